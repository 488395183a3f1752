"""pip-audit of the installed environment. Fails on any known vulnerability; says plainly when the
vulnerability service cannot be reached from this machine (then nothing was audited)."""

import json
import subprocess
import sys

done = subprocess.run([sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off",
                       "-f", "json"], capture_output=True, text=True, timeout=600)
try:
    report = json.loads(done.stdout)
except json.JSONDecodeError:
    print(f"pip-audit could not run: {done.stderr.strip()[-500:]}")
    sys.exit(0)
deps = report.get("dependencies", [])
audited = [d for d in deps if "skip_reason" not in d]
vulnerable = [d for d in audited if d.get("vulns")]
for d in vulnerable:
    for v in d["vulns"]:
        print(f"VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions', [])) or '-'})")
if not audited:
    print(f"pip-audit: the vulnerability service is unreachable from this machine; 0 of {len(deps)} packages audited")
else:
    print(f"pip-audit: {len(audited)} packages audited, {len(vulnerable)} with known vulnerabilities")
sys.exit(1 if vulnerable else 0)
