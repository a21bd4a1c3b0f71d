"""The shell examples of the user docs run as written: every ```sh block of a page, in order, in
one bash (set -euo pipefail) against a fresh server started the way the page says (bootstrap
client admin-cli). A command that fails or an example that no longer matches breaks this test."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/multi-tenancy.md"]
SECRET = "change-me-to-a-long-random-string"


def sh_blocks(text):
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", PAGES)
def test_shell_examples_run(start_server, page):
    blocks = sh_blocks((ROOT / page).read_text())
    assert len(blocks) >= 3, f"{page}: expected runnable ```sh examples"
    srv = start_server(env={"KEYSTEAD_BOOTSTRAP_CLIENT_ID": "admin-cli",
                            "KEYSTEAD_BOOTSTRAP_CLIENT_SECRET": SECRET})
    script = "set -euo pipefail\n" + "\n".join(
        f"echo '--- block {i + 1}' >&2\n{b}" for i, b in enumerate(blocks))
    env = {"BASE": srv.base, "PATH": "/usr/bin:/bin"}
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, \
        f"{page}: exit {r.returncode}\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}"
