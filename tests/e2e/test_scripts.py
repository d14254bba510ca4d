"""The setup scripts on a machine that has nothing: scripts/lib.sh's setup functions against a
fresh PGRX_HOME and HOME in a temp directory (cargo-pgrx already installed), and a failing
step of scripts/demo.sh, which must say what failed, where and what to do."""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "scripts", "lib.sh")
PG_CONFIG = open(os.path.join(ROOT, "pgrx-config", "pg_config")).read().split()[0]
REAL_HOME = os.path.expanduser("~")


def fresh_env(tmp_path, pgrx_home=None):
    """The environment of a newcomer: HOME and PGRX_HOME in tmp_path, nothing in them. The
    Rust toolchain and cargo-pgrx stay where they are (rustup's proxies need RUSTUP_HOME)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(home), PGRX_HOME=str(pgrx_home or home / ".pgrx"),
               RUSTUP_HOME=os.environ.get("RUSTUP_HOME", os.path.join(REAL_HOME, ".rustup")),
               CARGO_HOME=os.environ.get("CARGO_HOME", os.path.join(REAL_HOME, ".cargo")),
               PATH=os.path.join(REAL_HOME, ".cargo", "bin") + os.pathsep + os.environ["PATH"])
    return env


def bash(script, env, cwd=ROOT):
    return subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def pgrx_knows(env):
    """What cargo-pgrx (the same configuration reader the build uses) says of PostgreSQL 15."""
    path = subprocess.run(["cargo", "pgrx", "info", "pg-config", "pg15"], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    version = subprocess.run(["cargo", "pgrx", "info", "version", "pg15"], env=env, cwd=ROOT,
                             capture_output=True, text=True)
    return path.stdout.strip(), version.stdout.strip(), path.stderr + version.stderr


@pytest.mark.parametrize("start", ["missing", "empty directory", "empty config.toml", "config.toml of another tool"])
def test_pgrx_init_from_nothing(tmp_path, start):
    pgrx_home = tmp_path / "pgrx"
    if start != "missing":
        pgrx_home.mkdir()
    if start == "empty config.toml":
        (pgrx_home / "config.toml").write_text("")
    if start == "config.toml of another tool":
        (pgrx_home / "config.toml").write_text("[something]\nelse = 1\n")
    env = fresh_env(tmp_path, pgrx_home)
    run = bash(f'source "{LIB}"; pgrx_init 15 "{PG_CONFIG}"; echo SETUP-DONE', env)
    assert run.returncode == 0 and "SETUP-DONE" in run.stdout, (run.stdout, run.stderr)
    assert f'pg15 = "{PG_CONFIG}"' in (pgrx_home / "config.toml").read_text()
    path, version, err = pgrx_knows(env)
    assert path == PG_CONFIG, err
    assert re.match(r"15\.\d+", version), (version, err)
    # Idempotent: a second run changes nothing and says nothing.
    again = bash(f'source "{LIB}"; pgrx_init 15 "{PG_CONFIG}"', env)
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_pgrx_init_keeps_other_versions(tmp_path):
    """A version pgrx already knew (17 here: a pg_config that says 17) stays known."""
    pgrx_home = tmp_path / "pgrx"
    pgrx_home.mkdir()
    pg17 = tmp_path / "pg17" / "pg_config"
    pg17.parent.mkdir()
    pg17.write_text(f'#!/bin/sh\n[ "$1" = --version ] && echo "PostgreSQL 17.9" && exit 0\nexec "{PG_CONFIG}" "$@"\n')
    pg17.chmod(0o755)
    (pgrx_home / "config.toml").write_text(f'[configs]\npg17 = "{pg17}"\n')
    env = fresh_env(tmp_path, pgrx_home)
    run = bash(f'source "{LIB}"; pgrx_init 15 "{PG_CONFIG}"', env)
    assert run.returncode == 0, run.stderr
    text = (pgrx_home / "config.toml").read_text()
    assert f'pg15 = "{PG_CONFIG}"' in text and f'pg17 = "{pg17}"' in text, text


def failure_report(stderr):
    return re.search(r"FAILED \(exit status (\d+)\): (.*)\n  at: (.*)\n  what to do: (.*)", stderr)


def test_failed_setup_step_says_what_and_where(tmp_path):
    """cargo pgrx init failing (a pg_config that is not one) is reported with the command, the
    script and line, and the hint of the step."""
    env = fresh_env(tmp_path)
    fake = tmp_path / "pg_config"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    run = bash(f'source "{LIB}"; pgrx_init 15 "{fake}"; echo NOT-REACHED', env)
    assert run.returncode != 0 and "NOT-REACHED" not in run.stdout
    m = failure_report(run.stderr)
    assert m, run.stderr
    assert "cargo pgrx init" in m.group(2)
    assert re.match(r"scripts/lib\.sh:\d+ \(pgrx_init\)", m.group(3)), m.group(3)
    assert f"cargo pgrx init --pg15={fake}" in m.group(4)


def test_demo_failure_is_not_silent(tmp_path):
    """scripts/demo.sh with a build that fails (a cargo whose `pgrx install` fails): the
    demo stops with the failing command, lib.sh's line, the demo's line that called it, and
    what to do; nothing after it runs."""
    env = fresh_env(tmp_path)
    env["HOME"] = REAL_HOME  # pgrx knows PostgreSQL 15 already; only the build fails
    env.pop("PGRX_HOME")
    real_cargo = shutil.which("cargo", path=env["PATH"])
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "cargo").write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "pgrx install" ]; then echo "error: simulated build failure" >&2; exit 101; fi\n'
        f'exec "{real_cargo}" "$@"\n')
    (bindir / "cargo").chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    # lib.sh puts $HOME/.cargo/bin first; the fake must come before it.
    run = bash(f'PATH="{bindir}:$PATH" exec bash scripts/demo.sh --only attributes', env)
    assert run.returncode == 101, (run.returncode, run.stderr[-2000:])
    m = failure_report(run.stderr)
    assert m, run.stderr[-2000:]
    assert "cargo pgrx install" in m.group(2), m.group(2)
    assert re.match(r"scripts/lib\.sh:\d+ \(install_extension\) <- scripts/demo\.sh:\d+$", m.group(3)), m.group(3)
    assert "cargo pgrx install --release" in m.group(4)
    assert "running:" not in run.stderr and "demo 2" not in run.stderr
    # Reported once, by the shell that ran the command.
    assert run.stderr.count("FAILED") == 1, run.stderr[-2000:]


def test_check_failure_uses_fail(tmp_path):
    """A failure found by a check (not by a command's status) has the same form."""
    env = fresh_env(tmp_path)
    run = bash(f'source "{LIB}"; ensure_pg 16', env)
    assert run.returncode == 1
    m = re.search(r"FAILED: PostgreSQL 16: not supported here\n  at: scripts/lib\.sh:\d+ \(ensure_pg\)\n  what to do: use 15", run.stderr)
    assert m, run.stderr


@pytest.mark.parametrize("cargo_home", ["set", "unset"])
def test_cargo_bin_on_path(tmp_path, cargo_home):
    """`cargo install` puts cargo-pgrx into $CARGO_HOME/bin (by default ~/.cargo/bin): lib.sh
    puts that directory first on PATH, so a cargo-pgrx it has just installed is found (with a
    CARGO_HOME other than ~/.cargo it once was not)."""
    env = fresh_env(tmp_path)
    if cargo_home == "set":
        env["CARGO_HOME"] = str(tmp_path / "cargo")
        want = tmp_path / "cargo" / "bin"
    else:
        env.pop("CARGO_HOME")
        want = tmp_path / "home" / ".cargo" / "bin"
    run = bash(f'source "{LIB}"; echo "$PATH"', env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().split(os.pathsep)[0] == str(want), run.stdout
