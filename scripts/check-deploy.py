#!/usr/bin/env python3
"""Offline checks of deploy/kubernetes and the Dockerfile that a schema cannot make.

kubernetes-validate checks each resource against the API's schema; this checks what ties them
together: kustomization.yaml lists files that exist, the generator count agrees in every place
it is written, the Service, the PodMonitor and the pods agree on labels and port names, every
Secret and volume claim a pod names is defined here; and the Dockerfile copies every file the
release build reads. Needs PyYAML (.ci/run runs it with kubernetes-validate's install on
PYTHONPATH). Prints one line per problem and exits 1 if there is any.
"""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
problems = []


def load(name):
    docs = [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    if len(docs) != 1:
        problems.append(f"{name}: expected one resource, found {len(docs)}")
    return docs[0] if docs else {}


def arg_after(args, flag):
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


# kustomization.yaml: every listed file exists, none twice.
kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
listed = kust.get("resources") or []
for name in listed:
    if not (K8S / name).is_file():
        problems.append(f"kustomization.yaml lists {name}, which does not exist")
if len(set(listed)) != len(listed):
    problems.append("kustomization.yaml lists a file twice")

gen = load("generators-job.yaml")
svc = load("generators-service.yaml")
merge = load("merge-job.yaml")
monitor = load("podmonitor.yaml")
secret = load("secret.yaml")
pvc = load("reports-pvc.yaml")

# The worker count: completions, parallelism, --workers and the merge Job's directories.
spec = gen["spec"]
pod = spec["template"]
container = pod["spec"]["containers"][0]
args = [str(a) for a in container.get("args", [])]
n = spec.get("completions")
if spec.get("completionMode") != "Indexed":
    problems.append("generators-job.yaml: completionMode must be Indexed (JOB_COMPLETION_INDEX)")
if spec.get("parallelism") != n:
    problems.append(f"generators-job.yaml: parallelism {spec.get('parallelism')} != completions {n}: "
                    "the rendezvous waits for all workers at once")
if arg_after(args, "--workers") != str(n):
    problems.append(f"generators-job.yaml: --workers {arg_after(args, '--workers')} != completions {n}")
if spec.get("backoffLimit") != 0:
    problems.append("generators-job.yaml: backoffLimit must be 0 (a retried worker breaks the rendezvous)")
merge_args = [str(a) for a in merge["spec"]["template"]["spec"]["containers"][0]["args"]]
worker_dirs = [a for a in merge_args if re.fullmatch(r"/reports/worker-\d+", a)]
if worker_dirs != [f"/reports/worker-{i}" for i in range(n or 0)]:
    problems.append(f"merge-job.yaml: merges {worker_dirs}, expected worker-0 .. worker-{(n or 0) - 1}")

# Labels and ports: the Service and the PodMonitor must find the generator pods' metrics port.
labels = pod["metadata"].get("labels", {})
ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
if pod["spec"].get("subdomain") != svc["metadata"]["name"]:
    problems.append("generators-job.yaml: subdomain is not the headless Service's name")
if svc["spec"].get("clusterIP") != "None":
    problems.append("generators-service.yaml: clusterIP must be None (headless)")
for what, selector in (("generators-service.yaml", svc["spec"].get("selector", {})),
                       ("podmonitor.yaml", monitor["spec"]["selector"].get("matchLabels", {}))):
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        problems.append(f"{what}: selector {selector} does not select the generator pods {labels}")
for p in svc["spec"].get("ports", []):
    if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
        problems.append(f"generators-service.yaml: targetPort {p.get('targetPort')} is no generator port")
for e in monitor["spec"].get("podMetricsEndpoints", []):
    if e.get("port") not in ports:
        problems.append(f"podmonitor.yaml: port {e.get('port')} is no generator port name")
annotations = pod["metadata"].get("annotations", {})
if annotations.get("prometheus.io/port") != str(ports.get("metrics")):
    problems.append("generators-job.yaml: prometheus.io/port is not the metrics containerPort")
if arg_after(args, "--metrics-host") != "0.0.0.0":
    problems.append("generators-job.yaml: --metrics-host 0.0.0.0 is needed to be scraped")

# Every Secret key and claim a pod uses is the one defined here; DATABASE_URL is never inline.
for name in ("setup-job.yaml", "generators-job.yaml", "merge-job.yaml"):
    pspec = load(name)["spec"]["template"]["spec"]
    for c in pspec["containers"]:
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and (ref["name"] != secret["metadata"]["name"] or ref["key"] not in secret["stringData"]):
                problems.append(f"{name}: {e['name']} refers to {ref}, not defined by secret.yaml")
            if e["name"] == "DATABASE_URL" and "value" in e:
                problems.append(f"{name}: DATABASE_URL must come from the Secret, not a value")
    for v in pspec.get("volumes", []):
        claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim != pvc["metadata"]["name"]:
            problems.append(f"{name}: claim {claim} is not reports-pvc.yaml's")

# Dockerfile: the COPY sources exist and are not dockerignored, and they hold every file the
# build reads (include_str!/include_bytes! in src/, the [[bench]] targets Cargo.toml declares).
ignored = {l.strip().strip("/") for l in (ROOT / ".dockerignore").read_text().splitlines()
           if l.strip() and not l.startswith("#")}
copied = []
for line in (ROOT / "Dockerfile").read_text().splitlines():
    m = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
    if m:
        copied += m.group(1).split()
for src in copied:
    if not (ROOT / src).exists():
        problems.append(f"Dockerfile: COPY {src}: no such file")
    if src.strip("/") in ignored:
        problems.append(f"Dockerfile: COPY {src}, which .dockerignore excludes")
needed = set()
for rs in (ROOT / "src").rglob("*.rs"):
    for path in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', rs.read_text()):
        needed.add((rs.parent / path).resolve().relative_to(ROOT))
for name in re.findall(r'\[\[bench\]\]\s*name\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text()):
    needed.add(pathlib.Path("benches") / f"{name}.rs")
for path in sorted(needed):
    if not any(path == pathlib.Path(c) or pathlib.Path(c) in path.parents for c in copied):
        problems.append(f"Dockerfile: the build reads {path}, which no COPY brings in")

for p in problems:
    print(f"check-deploy: {p}")
if problems:
    sys.exit(1)
print(f"check-deploy: {len(listed)} kustomization resources, {n} generators, Dockerfile context: consistent")
