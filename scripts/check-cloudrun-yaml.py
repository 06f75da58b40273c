#!/usr/bin/env python3
"""Reads Cloud Run service files as `gcloud run services replace` does.

    check-cloudrun-yaml.py FILE...        check each, print a summary line
    check-cloudrun-yaml.py --env FILE     print its container's env as K=V
                                          (without the SDK too: files that
                                          `lines cloudrun` wrote)

gcloud turns the YAML into the Cloud Run v1 API's Service message before
it calls the API, and refuses a field the message lacks or a value of the
wrong type. This script does that same conversion with the Cloud SDK's own
code, offline: no account, no project, no network. It needs the Cloud SDK
(Debian: google-cloud-cli); exit status 3 when it is missing, 1 when a file
is refused.
"""
import os
import re
import subprocess
import sys


def sdk_root():
    for candidate in (os.environ.get("CLOUDSDK_ROOT", ""), "/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk",
                      "/google-cloud-sdk", os.path.expanduser("~/google-cloud-sdk")):
        if candidate and os.path.isdir(os.path.join(candidate, "lib", "googlecloudsdk")):
            return candidate
    try:
        gcloud = subprocess.run(["which", "gcloud"], capture_output=True, text=True).stdout.strip()
    except OSError:
        gcloud = ""
    if gcloud:
        root = os.path.dirname(os.path.dirname(os.path.realpath(gcloud)))
        if os.path.isdir(os.path.join(root, "lib", "googlecloudsdk")):
            return root
    return None


def plain_env(path):
    """Yields the env of a file that `lines cloudrun` wrote, read line by
    line: each "- name: K" directly followed by "value: V"."""
    name = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'^\s*- name: (\S+)\s*$', line)
            if m:
                name = m.group(1)
                continue
            m = re.match(r'^\s*value: (.*?)\s*$', line)
            if m and name:
                value = m.group(1)
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                yield name, value
            name = None


def main(argv):
    root = sdk_root()
    if root is None and argv[:1] == ["--env"]:
        for k, v in plain_env(argv[1]):
            print(f"{k}={v}")
        return 0
    if root is None:
        print("check-cloudrun-yaml: the Cloud SDK is not installed", file=sys.stderr)
        return 3
    sys.path[:0] = [os.path.join(root, "lib"), os.path.join(root, "lib", "third_party")]
    from googlecloudsdk.api_lib.run import service
    from googlecloudsdk.api_lib.util import messages as messages_util
    from googlecloudsdk.core import yaml
    from googlecloudsdk.generated_clients.apis.run.v1 import run_v1_messages as run

    def load(path):
        data = yaml.load_path(path)
        # The same conversion as surface/run/services/replace.py.
        raw = messages_util.DictToMessageWithErrorCheck(data, run.Service)
        return raw, service.Service(raw, run)

    if argv[:1] == ["--env"]:
        raw, _ = load(argv[1])
        for e in raw.spec.template.spec.containers[0].env:
            print(f"{e.name}={e.value}")
        return 0

    failed = 0
    for path in argv:
        try:
            raw, svc = load(path)
        except Exception as e:  # gcloud's errors have no common base
            print(f"{path}: refused: {e}")
            failed += 1
            continue
        spec = raw.spec.template.spec
        c = spec.containers[0]
        annotations = {p.key: p.value for p in raw.spec.template.metadata.annotations.additionalProperties}
        limits = {p.key: p.value for p in c.resources.limits.additionalProperties}
        volumes = [f"{v.name}:{v.csi.driver}" for v in spec.volumes if v.csi]
        print(f"{path}: {svc.name}: image {c.image}, port {c.ports[0].name}/{c.ports[0].containerPort}, "
              f"concurrency {spec.containerConcurrency}, limits {limits}, "
              f"startup {c.startupProbe.httpGet.path}, liveness {c.livenessProbe.httpGet.path}, "
              f"minScale {annotations.get('autoscaling.knative.dev/minScale')}, volumes {volumes or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
