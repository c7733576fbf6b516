#!/usr/bin/env python3
"""Tests of `pipesim serve` over HTTP (standard library only): answers equal to the CLI's --format json,
the limits (413, 400, 404, path escapes), 50 concurrent simulations, bounded memory, and a sweep that
stops when its client goes away. Usage: server_test.py PATH/TO/pipesim"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest

PIPESIM = sys.argv[1] if len(sys.argv) > 1 else "build/cli/pipesim"
PLAN = {"model": "deepseek-v3", "cluster": "deepseek-h800", "pp": 16, "ep": 64, "microbatches": 120,
        "precision": "fp8", "selective-recompute": True, "schedule": "dualpipe"}


def words(options):
    out = []
    for key, value in options.items():
        if value is True:
            out.append("--" + key)
        else:
            out += ["--" + key, str(value)]
    return out


class Server:
    def __init__(self, *extra):
        self.process = subprocess.Popen([PIPESIM, "serve", "--port", "0", *extra], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if "http://" not in line:
            raise RuntimeError("serve printed: " + line + self.process.stderr.read())
        self.port = int(line.split("http://")[1].split("/")[0].split(":")[1])

    def request(self, method, path, body=None, timeout=120):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read().decode()
        connection.close()
        return response.status, text

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--workers", "8", "--max-sweep-points", "5000")
        cls.cli = subprocess.run([PIPESIM, "simulate", *words(PLAN), "--format", "json"], check=True,
                                 capture_output=True, text=True).stdout

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_simulate_answers_what_the_cli_prints(self):
        status, text = self.server.request("POST", "/api/simulate", PLAN)
        self.assertEqual(status, 200, text)
        self.assertEqual(text, self.cli)

    def test_lists(self):
        for path, name in [("/api/schedules", "dualpipe"), ("/api/models", "deepseek-v3"), ("/api/clusters", "deepseek-h800")]:
            status, text = self.server.request("GET", path)
            self.assertEqual(status, 200)
            self.assertIn(name, [entry["name"] for entry in json.loads(text)])

    def test_schedule_answers_what_the_cli_prints_in_each_format(self):
        for fmt in ["json", "csv", "text", "grid"]:
            cli = subprocess.run([PIPESIM, "schedule", "--schedule", "zb-v", "--pp", "4", "-m", "8", "--format", fmt],
                                 check=True, capture_output=True, text=True).stdout
            status, text = self.server.request("POST", "/api/schedule",
                                               {"schedule": "zb-v", "pp": 4, "microbatches": 8, "format": fmt})
            self.assertEqual((status, text), (200, cli), fmt)
        status, text = self.server.request("POST", "/api/schedule", {"schedule": "zb-v", "format": "xml"})
        self.assertEqual(status, 400)
        self.assertIn("format 'xml'", json.loads(text)["error"])

    def test_oversized_body_is_413(self):
        status, text = self.server.request("POST", "/api/simulate", b"x" * (17 << 20))
        self.assertEqual(status, 413, text)

    def test_garbage_json_is_400_with_the_parsers_message(self):
        status, text = self.server.request("POST", "/api/simulate", b"{pp: 16,")
        self.assertEqual(status, 400)
        self.assertIn("malformed JSON", json.loads(text)["error"])

    def test_impossible_plan_is_400_with_the_clis_message(self):
        plan = dict(PLAN, schedule="nosuch")
        cli = subprocess.run([PIPESIM, "simulate", *words(plan), "--format", "json"], capture_output=True, text=True)
        self.assertEqual(cli.returncode, 2)
        status, text = self.server.request("POST", "/api/simulate", plan)
        self.assertEqual(status, 400)
        self.assertEqual("pipesim: error: " + json.loads(text)["error"] + "\n", cli.stderr)

    def test_options_the_server_sets_and_option_injection_are_refused(self):
        for body in [dict(PLAN, format="table"), dict(PLAN, trace="/tmp/x.json"), dict(PLAN, schedule="--trace=/x"),
                     {"Bad Key": 1}, [1, 2]]:
            status, text = self.server.request("POST", "/api/simulate", body)
            self.assertEqual(status, 400, (body, text))

    def test_unknown_route_and_escaping_paths_are_404(self):
        for path in ["/api/nope", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/web/app.js", "/index.html/x"]:
            status, _ = self.server.request("GET", path)
            self.assertEqual(status, 404, path)
        status, text = self.server.request("GET", "/app.js")
        self.assertEqual(status, 200)
        self.assertIn("pipesimTimeline", text)

    def test_files_come_from_the_request_never_from_disk(self):
        status, text = self.server.request("POST", "/api/simulate", {"from-csv": "/etc/passwd"})
        self.assertEqual(status, 400)
        self.assertIn("no uploaded file named '/etc/passwd'", json.loads(text)["error"])
        csv = subprocess.run([PIPESIM, "schedule", "--schedule", "1f1b", "--pp", "4", "-m", "8", "--format", "csv"],
                             check=True, capture_output=True, text=True).stdout
        status, text = self.server.request("POST", "/api/simulate", {"from-csv": "up.csv", "files": {"up.csv": csv}})
        self.assertEqual(status, 200, text)
        self.assertEqual(json.loads(text)["microbatches"], 8)

    def test_fifty_concurrent_simulations_all_answered_correctly_in_bounded_memory(self):
        before = self.server.rss_kib()
        results = [None] * 50

        def ask(i):
            results[i] = self.server.request("POST", "/api/simulate", PLAN)
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for status, text in results:
            self.assertEqual(status, 200)
            self.assertEqual(text, self.cli)
        grown = self.server.rss_kib() - before
        print(f"50 concurrent simulations: server RSS {before // 1024} MiB before, +{grown // 1024} MiB after",
              file=sys.stderr)
        self.assertLess(grown, 1024 * 1024, "the server's memory grew by more than 1 GiB")

    def test_a_sweep_past_the_limit_is_refused(self):
        status, text = self.server.request("POST", "/api/sweep", dict(PLAN, vary=["pp=" + ",".join(["8"] * 80),
                                                                                     "microbatches=" + ",".join(["60"] * 80)]))
        self.assertEqual(status, 400)
        self.assertIn("6400 points", json.loads(text)["error"])
        status, text = self.server.request("POST", "/api/sweep", dict(PLAN, vary=["nosuch=1,2"]))
        self.assertEqual(status, 400)
        self.assertIn("unknown field 'nosuch'", json.loads(text)["error"])

    def test_a_sweep_streams_rows_and_its_result(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        connection.request("POST", "/api/sweep", body=json.dumps(dict(PLAN, vary=["schedule=1f1b,dualpipe"])))
        response = connection.getresponse()
        self.assertEqual(response.status, 200)
        events = response.read().decode().split("\n\n")
        kinds = [e.split("\n")[0] for e in events if e]
        self.assertEqual(kinds.count("event: row"), 2)
        self.assertEqual(kinds[-1], "event: result")
        result = json.loads(events[-2].split("data: ", 1)[1])
        cli = json.loads(subprocess.run([PIPESIM, "sweep", *words({k: v for k, v in PLAN.items() if k != "schedule"}),
                                         "--vary", "schedule=1f1b,dualpipe", "--format", "json"],
                                        check=True, capture_output=True, text=True).stdout)
        self.assertEqual(result, cli)

    def test_a_cancelled_sweep_stops_its_work(self):
        plan = {k: v for k, v in PLAN.items() if k != "schedule"}
        plan.update(vary=["schedule=1f1b,zb-h1,zb-v,dualpipe", "microbatches=" + ",".join(str(m) for m in range(16, 1016))],
                    jobs=1)  # 4000 points, one at a time
        _, status = self.server.request("GET", "/api/status")
        start = json.loads(status)["sweep_points"]
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        connection.request("POST", "/api/sweep", body=json.dumps(plan))
        response = connection.getresponse()
        self.assertEqual(response.status, 200)
        response.read1(256)  # the first events have come: the sweep runs
        connection.sock.close()
        connection.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            state = json.loads(self.server.request("GET", "/api/status")[1])
            if state["active_sweeps"] == 0:
                break
            time.sleep(0.1)
        self.assertEqual(state["active_sweeps"], 0, "the sweep still runs after its client went away")
        done = state["sweep_points"] - start
        time.sleep(0.5)
        self.assertEqual(json.loads(self.server.request("GET", "/api/status")[1])["sweep_points"] - start, done)
        self.assertLess(done, 4000)
        print(f"cancelled sweep: stopped after {done} of 4000 points", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
