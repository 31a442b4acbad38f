#!/usr/bin/env python3
"""Differential check and benchmark: gantry tag-metadata vs docker/metadata-action under node.

Both run through the runner contract (INPUT_*, GITHUB_* env, GITHUB_OUTPUT/GITHUB_ENV files, an
event file) against the same local fake repository API (loopback only), for every recorded
fixture in tests/fixtures/tag-metadata and every case below.

  compare.py diff  --gantry target/release/gantry --upstream /path/to/metadata-action/dist/index.cjs
  compare.py bench --gantry target/release/gantry --upstream /path/to/dist/index.cjs [-n 50]

Get upstream's bundle with: git clone https://github.com/docker/metadata-action (tag v6.2.0);
its dist/index.cjs needs only node >= 20. Not run by CI.
"""
import argparse, http.server, json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "tag-metadata")
SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"

REPO = {"id": 1, "name": "hello", "full_name": "acme/hello", "html_url": "https://github.com/acme/hello",
        "description": "Hello & <welcome>", "default_branch": "master",
        "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT"}}


class Api(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/repos/acme/hello":
            body, code = REPO, 200
        elif path.startswith("/repos/acme/hello/commits/"):
            body, code = {"sha": path.rsplit("/", 1)[1], "commit": {"committer": {"date": "2020-01-08T10:11:12Z"}}}, 200
        elif path == "/repos/acme/hello/tags":
            body, code = [{"name": t} for t in ["v1.2.0", "v1.1.1", "v1.0.0"]], 200
        else:
            body, code = {"message": "Not Found"}, 404
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_api():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


# (fixture, inputs, extra env)
CASES = [
    ("push-branch", {}, {}),
    ("push-default-branch", {"images": "ghcr.io/acme/hello\nacme/hello", "tags": "type=edge\ntype=ref,event=branch\ntype=sha\ntype=raw,value=latest,enable={{is_default_branch}}"}, {}),
    ("push-tag", {"images": "ghcr.io/acme/hello", "tags": "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{major}}\ntype=sha"}, {}),
    ("push-tag", {"images": "name/foo,name/bar", "tags": "type=ref,event=tag\ntype=pep440,pattern={{version}}\ntype=match,pattern=v(\\d.\\d),group=1", "flavor": "prefix=glo-\nsuffix=-bal,onlatest=true"}, {}),
    ("push-tag", {"images": "x/y", "tags": "type=sha,priority=1000\ntype=semver,pattern={{version}},priority=10", "labels": "maintainer=me\norg.opencontainers.image.title=Title\nnolabel", "annotations": "a=b\nc={{tag}}"}, {"DOCKER_METADATA_ANNOTATIONS_LEVELS": "manifest,index"}),
    ("pull-request", {"images": "x/y", "tags": "type=ref,event=pr\ntype=ref,event=branch\ntype=sha,format=long\ntype=raw,value={{base_ref}}-{{branch}}"}, {}),
    ("pull-request", {"images": "x/y", "tags": "type=sha\ntype=raw,value=pr-{{sha}}"}, {"DOCKER_METADATA_PR_HEAD_SHA": "true", "DOCKER_METADATA_SHORT_SHA_LENGTH": "12"}),
    ("pull-request-target", {"images": "x/y", "tags": "type=ref,event=pr\ntype=raw,value=b{{branch}}"}, {}),
    ("schedule", {"images": "x/y", "tags": "type=schedule\ntype=schedule,pattern={{date 'YYYYMMDD'}}\ntype=raw,value={{is_default_branch}}"}, {}),
    ("release", {"images": "x/y", "tags": "type=semver,pattern=v{{major}}\ntype=ref,event=tag", "flavor": "latest=false"}, {}),
    ("workflow-dispatch", {"images": "x/y", "tags": "type=raw,value=feat=x-{{branch}}\ntype=ref,event=branch,suffix=-{{commit_date 'YYYY-MM-DD' tz='Europe/Paris'}}\n# comment\ntype=raw,value={{commit_date YYYY}}"}, {}),
    ("push-branch", {"images": "x/y", "tags": "type=semver,pattern={{version}},value=v2.0.0-rc.1\ntype=match,pattern=\\d+,value=build-42", "sep-tags": ",", "sep-labels": ";"}, {}),
    ("push-branch", {"tags": "type=raw,value=a\ntype=raw,value=a\ntype=raw,value=b/c"}, {"DOCKER_METADATA_SET_OUTPUT_ENV": "false"}),
    # moment formats and zones through {{commit_date}} (the API's fixed date)
    ("workflow-dispatch", {"tags": "type=raw,value={{commit_date 'dddd-Do-MMMM-YYYY-wo-W-Q-DDDD-gggg-GGGG-hh-A-a-k-SSS-ZZ-z' tz='America/New_York'}}\ntype=raw,value={{commit_date 'LLLL' tz='Asia/Kolkata'}}\ntype=raw,value={{commit_date 'X-x-YY-M-D-H-m-s-E-e-d-ddd-dd' tz='australia/sydney'}}"}, {}),
    ("workflow-dispatch", {"labels": "desc=this is a \"good\" example\nbranch={{branch}}\nraw={{{branch}}}&x\nnolabel\nempty=\nZ=1\na_b=2\na-b=3", "annotations": "k=v=w"}, {}),
    ("push-branch", {"tags": "\"type=match,\"\"pattern=\\d{1,2}\"\",value=build-123\"\ntype=match,\"pattern=\\d{1,2}\",value=build-456,group=0"}, {}),
    ("push-tag", {"tags": "type=ref,event=tag", "flavor": "latest=true\nprefix={{tag}}-,onlatest=true"}, {}),
    ("push-tag", {"tags": "type=raw,value={{base_ref}}-{{is_default_branch}}\ntype=raw,value=x,priority=abc\ntype=sha,priority=5000"}, {"DOCKER_METADATA_SHORT_SHA_LENGTH": "0x0a"}),
    ("push-tag", {"images": "name=a/b,enable=false\nname=C/D\ne/f", "tags": "type=semver,pattern={{raw}}\ntype=semver,pattern={{major}}.{{minor}}.{{patch}}-{{prerelease}}"}, {}),
    ("schedule", {"tags": "type=schedule,pattern={{date 'YYYY'}}-{{branch}}", "sep-tags": " | "}, {}),
    ("push-branch", {"tags": "type=foo"}, {}),
    ("push-branch", {"tags": "type=raw,value=x,enable=yes"}, {}),
    ("push-tag", {"tags": "type=match,pattern=(unclosed"}, {}),
    ("push-tag", {"tags": "type=sha"}, {"DOCKER_METADATA_SHORT_SHA_LENGTH": "seven"}),
    ("push-tag", {"flavor": "latest=maybe"}, {}),
    ("push-tag", {"tags": "type=raw,value=a\"b"}, {}),
    ("push-tag", {"tags": "type=raw,value={{foo 'x'}}"}, {}),
]


def parse_runner_file(text):
    out, lines, i = {}, text.split("\n"), 0
    while i < len(lines):
        line = lines[i]; i += 1
        if not line:
            continue
        m = re.match(r"^([^=<]+)<<(.+)$", line)
        if m:
            val = []
            while lines[i] != m.group(2):
                val.append(lines[i]); i += 1
            i += 1
            out[m.group(1)] = "\n".join(val)
        else:
            k, v = line.split("=", 1); out[k] = v
    return out


def run_one(kind, program, fixture, inputs, extra, api_url):
    tmp = tempfile.mkdtemp(prefix="tm-cmp-")
    ws = os.path.join(tmp, "ws"); os.makedirs(ws)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "GITHUB_ACTIONS": "true",
           "GITHUB_API_URL": api_url, "GITHUB_WORKSPACE": ws, "RUNNER_TEMP": tmp}
    with open(os.path.join(FIX, fixture, "env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, v = line.split("=", 1); env[k] = v
    env["GITHUB_EVENT_PATH"] = os.path.join(FIX, fixture, "event.json")
    for n in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY"):
        env[n] = os.path.join(tmp, n.lower()); open(env[n], "w").close()
    for k, v in inputs.items():
        env["INPUT_" + k.upper()] = v
    env.update(extra)
    argv = ["node", program] if kind == "upstream" else [program, "tag-metadata"]
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=ws, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    outs = parse_runner_file(open(env["GITHUB_OUTPUT"]).read())
    envs = parse_runner_file(open(env["GITHUB_ENV"]).read())
    bake = {k: open(v if os.path.isabs(v) else os.path.join(ws, v)).read() for k, v in outs.items() if k.startswith("bake-file") and v}
    shutil.rmtree(tmp, ignore_errors=True)
    return p.returncode, outs, envs, bake, dt, p.stdout


CREATED = re.compile(r"(org\.opencontainers\.image\.created=)[0-9T:.\-]+Z")


def norm_value(k, v):
    if k.lower().endswith("json") and v.startswith("{"):
        j = json.loads(v)
        if "org.opencontainers.image.created" in j.get("labels", {}):
            j["labels"]["org.opencontainers.image.created"] = "<now>"
        v = json.dumps(j)
    v = re.sub(r'("org\.opencontainers\.image\.created": ")[^"]+', r"\1<now>", v)
    return CREATED.sub(r"\1<now>", v)


def norm(d):
    return {k: norm_value(k, v) for k, v in d.items()
            if not k.startswith("bake-file") and not k.startswith("DOCKER_METADATA_OUTPUT_BAKE_FILE") and k != "build-args"}


def diff(args):
    srv, url = start_api()
    bad = 0
    for i, (fx, inputs, extra) in enumerate(CASES):
        a = run_one("upstream", args.upstream, fx, inputs, extra, url)
        b = run_one("gantry", args.gantry, fx, inputs, extra, url)
        na, nb = norm(a[1]), norm(b[1])
        ea, eb = norm(a[2]), norm(b[2])
        ba = {k: norm_value("", v) for k, v in a[3].items()}
        bb = {k: norm_value("", v) for k, v in b[3].items()}
        same = a[0] == b[0] and na == nb and ea == eb and ba == bb
        print(f"case {i:2} {fx:22} {'SAME' if same else 'DIFF'}  exit={a[0]}/{b[0]} tags={na.get('tags', '').splitlines()}")
        if not same:
            bad += 1
            for name, x, y in (("output", na, nb), ("env", ea, eb), ("bake", ba, bb)):
                for k in sorted(set(x) | set(y)):
                    if x.get(k) != y.get(k):
                        print(f"  {name} {k}:\n    upstream: {x.get(k)!r}\n    gantry:   {y.get(k)!r}")
    srv.shutdown()
    print(f"{len(CASES) - bad}/{len(CASES)} cases identical")
    return 1 if bad else 0


def bench(args):
    srv, url = start_api()
    res = {}
    runs = [("gantry", args.gantry, {}), ("gantry-no-api", args.gantry, {"GITHUB_REPOSITORY": ""}),
            ("upstream", args.upstream, {})]
    for label, prog, override in runs:
        if not prog:
            continue
        kind = "upstream" if label == "upstream" else "gantry"
        times = []
        for _ in range(args.n):
            for fx, inputs, extra in CASES[:4]:
                times.append(run_one(kind, prog, fx, inputs, {**extra, **override}, url)[4])
        res[label] = statistics.median(times)
        print(f"{label:14} min {min(times)*1000:7.2f} ms, median {res[label]*1000:8.2f} ms/invocation, p90 {sorted(times)[int(len(times)*0.9)]*1000:8.2f} ms over {len(times)} runs")
    if "upstream" in res and "gantry" in res:
        print(f"ratio (same work, same local API): upstream / gantry = {res['upstream'] / res['gantry']:.1f}x")
    srv.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["diff", "bench"])
    ap.add_argument("--gantry", default=os.path.join(ROOT, "target", "release", "gantry"))
    ap.add_argument("--upstream", default="")
    ap.add_argument("-n", type=int, default=20)
    a = ap.parse_args()
    a.gantry = os.path.abspath(a.gantry)
    a.upstream = os.path.abspath(a.upstream) if a.upstream else ""
    sys.exit(diff(a) if a.mode == "diff" else bench(a))


if __name__ == "__main__":
    main()
