// JSON input: malformed text, missing fields, wrong types and out-of-range numbers all end as one input
// Error that names the source, the JSON path and the value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/error.hpp"
#include "common/json.hpp"

namespace pipesim {
namespace {

using Json = nlohmann::json;

// The message of the Error `f` throws ("no error" if it returns); every refusal is an input error.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2) << e.what();
    return e.what();
  }
  return "no error";
}

const char* kDoc = R"({"name": "tiny", "layers": 4, "ratio": 0.5, "on": true, "ids": [1, 2, 3],
                       "tags": ["a", "b"], "big": 3000000000, "sci": 3e9, "half": 2.5, "huge": 18446744073709551615,
                       "a": {"b": [{"c": 1}, {"c": 2}, {"c": "three"}]}})";

TEST(Json, ReadsEverySupportedType) {
  Json j = parse_json(kDoc, "doc.json");
  JsonReader r(j, "doc.json");
  EXPECT_EQ(r.path(), "doc.json");
  EXPECT_EQ(r.required<std::string>("name"), "tiny");
  EXPECT_EQ(r.required<int>("layers"), 4);
  EXPECT_EQ(r.required<std::int64_t>("big"), 3'000'000'000);
  EXPECT_EQ(r.required<std::int64_t>("sci"), 3'000'000'000) << "a float with no fraction is a whole number";
  EXPECT_DOUBLE_EQ(r.required<double>("ratio"), 0.5);
  EXPECT_DOUBLE_EQ(r.required<double>("layers"), 4.0) << "an integer is a number";
  EXPECT_TRUE(r.required<bool>("on"));
  EXPECT_EQ(r.required<std::vector<int>>("ids"), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(r.required<std::vector<std::string>>("tags"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.optional<int>("absent", 7), 7);
  EXPECT_EQ(r.optional<int>("layers", 7), 4);
  EXPECT_TRUE(r.has("a"));
  EXPECT_FALSE(r.has("absent"));
  auto elements = r.child("a").child("b").elements();
  ASSERT_EQ(elements.size(), 3u);
  EXPECT_EQ(elements[1].path(), "doc.json: a.b[1]");
  EXPECT_EQ(elements[1].required<int>("c"), 2);
  EXPECT_EQ(elements[1].child("c").path(), "doc.json: a.b[1].c");
  EXPECT_EQ(&r.child("a").node(), &j["a"]);
}

TEST(Json, MalformedAndTruncatedTextIsNotValidJson) {
  for (const char* text : {"{\"layers\": 2,", "{\"layers\": }", "", "[1, 2", "{\"a\": 1} trailing", "{'a': 1}"}) {
    SCOPED_TRACE(text);
    std::string message = error_of([&] { parse_json(text, "bad.json"); });
    EXPECT_EQ(message.rfind("bad.json: not valid JSON (truncated?): ", 0), 0u) << message;
    EXPECT_NE(message.find("parse error"), std::string::npos) << "the parser's detail follows: " << message;
  }
}

TEST(Json, NumbersBeyondADoubleNameTheirPathAndText) {
  EXPECT_EQ(error_of([] { parse_json(R"({"a": {"b": [1, 1e400]}})", "big.json"); }),
            "big.json: a.b[1]: number out of range, got 1e400");
  EXPECT_EQ(error_of([] { parse_json(R"({"x": [[0, 1], [2, -1e999]]})", "big.json"); }),
            "big.json: x[1][1]: number out of range, got -1e999");
  EXPECT_EQ(error_of([] { parse_json("1e400", "big.json"); }), "big.json: number out of range, got 1e400");
}

TEST(Json, MissingFieldsNameTheirPath) {
  Json j = parse_json(kDoc, "doc.json");
  JsonReader r(j, "doc.json");
  EXPECT_EQ(error_of([&] { r.required<int>("hidden"); }), "doc.json: hidden: missing");
  EXPECT_EQ(error_of([&] { r.child("a").child("x"); }), "doc.json: a.x: missing");
  EXPECT_EQ(error_of([&] { r.child("a").child("b").elements()[0].required<int>("d"); }), "doc.json: a.b[0].d: missing");
}

TEST(Json, WrongTypesNameThePathAndTheValue) {
  Json j = parse_json(kDoc, "doc.json");
  JsonReader r(j, "doc.json");
  EXPECT_EQ(error_of([&] { r.required<int>("name"); }), "doc.json: name: expected an integer, got \"tiny\"");
  EXPECT_EQ(error_of([&] { r.required<int>("half"); }), "doc.json: half: expected an integer, got 2.5");
  EXPECT_EQ(error_of([&] { r.required<double>("name"); }), "doc.json: name: expected a number, got \"tiny\"");
  EXPECT_EQ(error_of([&] { r.required<bool>("layers"); }), "doc.json: layers: expected true or false, got 4");
  EXPECT_EQ(error_of([&] { r.required<std::string>("layers"); }), "doc.json: layers: expected a string, got 4");
  EXPECT_EQ(error_of([&] { r.required<std::vector<int>>("name"); }), "doc.json: name: expected an array, got \"tiny\"");
  EXPECT_EQ(error_of([&] { r.required<std::vector<std::string>>("ids"); }), "doc.json: ids[0]: expected a string, got 1");
  EXPECT_EQ(error_of([&] { r.optional<int>("name", 1); }), "doc.json: name: expected an integer, got \"tiny\"")
      << "a present field of the wrong type is an error, not the fallback";
  EXPECT_EQ(error_of([&] { r.child("ids").has("x"); }), "doc.json: ids: expected an object, got [1,2,3]");
  EXPECT_EQ(error_of([&] { r.child("layers").child("x"); }), "doc.json: layers: expected an object, got 4");
  EXPECT_EQ(error_of([&] { r.child("a").elements(); }),
            "doc.json: a: expected an array, got {\"b\":[{\"c\":1},{\"c\":2},{\"c\":\"three\"}]}");
}

TEST(Json, NestedPathsReachTheFailingValue) {
  Json j = parse_json(kDoc, "doc.json");
  JsonReader r(j, "doc.json");
  auto read_all = [&] {
    for (auto& b : r.child("a").child("b").elements()) b.required<int>("c");
  };
  EXPECT_EQ(error_of(read_all), "doc.json: a.b[2].c: expected an integer, got \"three\"");
  Json list = parse_json(R"([{"x": 1}, {"x": "y"}])", "list.json");
  JsonReader top(list, "list.json");
  EXPECT_EQ(error_of([&] { top.expect_object(); }), "list.json: expected an object, got [{\"x\":1},{\"x\":\"y\"}]");
  EXPECT_EQ(error_of([&] { top.elements()[1].required<int>("x"); }), "list.json: [1].x: expected an integer, got \"y\"");
  EXPECT_EQ(error_of([&] { r.child("a").child("b").fail("needs three entries"); }),
            "doc.json: a.b: needs three entries");
  EXPECT_EQ(error_of([&] { r.fail("is empty"); }), "doc.json: is empty");
}

TEST(Json, NumbersOutOfTheTypesRangeAreRefused) {
  Json j = parse_json(kDoc, "doc.json");
  JsonReader r(j, "doc.json");
  EXPECT_EQ(error_of([&] { r.required<int>("big"); }),
            "doc.json: big: expected an integer in -2147483648..2147483647, got 3000000000");
  EXPECT_EQ(error_of([&] { r.required<int>("sci"); }),
            "doc.json: sci: expected an integer in -2147483648..2147483647, got 3000000000.0");
  EXPECT_EQ(error_of([&] { r.required<std::int64_t>("huge"); }),
            "doc.json: huge: expected an integer in -9223372036854775808..9223372036854775807, got "
            "18446744073709551615");
  Json edges = parse_json(R"({"max": 2147483647, "min": -2147483648, "over": 2147483648, "under": -2147483649,
                              "f64": 9.3e18, "neg": -9223372036854775808})",
                          "edges.json");
  JsonReader e(edges, "edges.json");
  EXPECT_EQ(e.required<int>("max"), std::numeric_limits<int>::max());
  EXPECT_EQ(e.required<int>("min"), std::numeric_limits<int>::min());
  EXPECT_NE(error_of([&] { e.required<int>("over"); }).find("edges.json: over: expected an integer in"), std::string::npos);
  EXPECT_NE(error_of([&] { e.required<int>("under"); }).find("got -2147483649"), std::string::npos);
  EXPECT_NE(error_of([&] { e.required<std::int64_t>("f64"); }).find("edges.json: f64: expected an integer in"),
            std::string::npos);
  EXPECT_EQ(e.required<std::int64_t>("neg"), std::numeric_limits<std::int64_t>::min());
  // Non-finite values cannot come from text, but documents built in code can hold them.
  Json odd = {{"nan", std::nan("")}, {"inf", std::numeric_limits<double>::infinity()}};
  JsonReader o(odd, "code");
  EXPECT_EQ(error_of([&] { o.required<double>("nan"); }), "code: nan: expected a finite number, got nan");
  EXPECT_EQ(error_of([&] { o.required<double>("inf"); }), "code: inf: expected a finite number, got inf");
  EXPECT_EQ(error_of([&] { o.required<int>("inf"); }), "code: inf: expected an integer, got inf");
}

TEST(Json, UnknownKeysAreNamedWithTheKnownOnes) {
  Json j = parse_json(R"({"nodes": 2, "nodez": 3, "gpu": {"sms": 1, "tflops": 2}})", "c.json");
  JsonReader r(j, "c.json");
  EXPECT_EQ(error_of([&] { r.only_keys({"nodes", "gpu"}); }), "c.json: nodez: unknown field (known: nodes, gpu)");
  EXPECT_EQ(error_of([&] { r.child("gpu").only_keys({"sms"}); }), "c.json: gpu.tflops: unknown field (known: sms)");
  EXPECT_EQ(error_of([&] { r.only_keys({"nodes", "nodez", "gpu"}); }), "no error");
}

TEST(Json, LongValuesAreShortenedInMessages) {
  Json j = {{"s", std::string(500, 'x')}};
  std::string message = error_of([&] { JsonReader(j, "l.json").required<int>("s"); });
  EXPECT_LT(message.size(), 140u) << message;
  EXPECT_EQ(message.substr(message.size() - 3), "...");
}

}  // namespace
}  // namespace pipesim
