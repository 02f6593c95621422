"""The fenced blocks of README.md and docs/*.md, and a shell session that runs the command
blocks as a reader would: in one working directory standing for the checkout, with a private
HOME, `allmysms-mock` meaning the code under test, against a real `serve` whose documented
default ports (2121, 61022, 8021) are replaced by the test's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.serve import READY_RE, Serve, http_json
from tests.support.tools import client_env
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SHELL_LANGS = frozenset({"sh", "bash", "shell", "console"})
FENCE_RE = re.compile(r"^\s*```(.*)$")
FINGERPRINT_RE = re.compile(r"host key (SHA256:[A-Za-z0-9+/]+)")
# The documented default ports, and which of the test server's ports each one stands for.
# This is the only rewriting of a command's text.
DEFAULT_PORTS = {"2121": "ftp", "61022": "sftp", "8021": "http"}
DEFAULT_PORT_RE = re.compile(r"(?<![0-9])(2121|61022|8021)(?![0-9])")


def documents() -> list[str]:
    """README.md and every docs/*.md, as paths relative to the checkout."""
    return ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced block: where it opens, its language label, its text, and the text of the
    block right after it when nothing but its fence separates them (an example's output)."""

    doc: str
    line: int
    lang: str
    text: str
    output: str = ""

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def is_command(self) -> bool:
        return self.lang in SHELL_LANGS

    def has_line(self, line: str) -> bool:
        return line in (raw.strip() for raw in self.text.splitlines())

    def output_json(self) -> Any:
        assert self.output, f"{self.where}: no output block follows"
        return json.loads(self.output)


def blocks(doc: str) -> list[Block]:
    """Every fenced block of `doc`, in order; an unclosed fence is an error."""
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str, str, int]] = []  # (open line, lang, text, close line)
    index = 0
    while index < len(lines):
        match = FENCE_RE.match(lines[index])
        if match is None:
            index += 1
            continue
        start, lang = index, match.group(1).strip()
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            index += 1
        assert index < len(lines), f"{doc}:{start + 1}: the fence is never closed"
        found.append((start, lang, "\n".join(lines[start + 1 : index]), index))
        index += 1
    out: list[Block] = []
    for i, (start, lang, text, close) in enumerate(found):
        follows = i + 1 < len(found) and found[i + 1][0] == close + 1
        out.append(Block(doc, start + 1, lang, text, found[i + 1][2] if follows else ""))
    return out


def console_parts(text: str) -> tuple[str, str]:
    """A ```console block: (its `$ ` commands as a script, the output it shows)."""
    commands = [line[2:] for line in text.splitlines() if line.startswith("$ ")]
    shown = [line for line in text.splitlines() if not line.startswith("$ ")]
    return "\n".join(commands), "\n".join(shown)


@dataclass(frozen=True)
class Done:
    script: str
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- script\n{self.script}\n--- stdout\n{self.stdout}" + (
            f"\n--- stderr\n{self.stderr}"
        )


class Session:
    """A reader's terminal: one working directory, a private HOME, `allmysms-mock` on PATH
    (this interpreter running the checkout's `mockserver`), and the server they started."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.workdir = base / "work"
        self.home = base / "home"
        self.workdir.mkdir(parents=True)
        self.home.mkdir()
        bindir = base / "bin"
        bindir.mkdir()
        shim = bindir / "allmysms-mock"
        shim.write_text(
            "#!/bin/sh\n"
            f'PYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" '
            f'exec "{sys.executable}" -m mockserver "$@"\n'
        )
        shim.chmod(0o755)
        self.path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
        self.serve: Serve | None = None
        self.proc: subprocess.Popen[bytes] | None = None  # a server a block started
        self.server_out = base / "no-server.out"
        self.ports = {"ftp": 0, "sftp": 0, "http": 0}

    # -- the server --------------------------------------------------------------------------

    def start_default(self) -> None:
        """`allmysms-mock serve` on its defaults, but on free ports, with `./allmysms-data`."""
        self.serve = Serve(self.base / "serve", self.workdir / "allmysms-data").start()
        self.server_out = self.serve.stdout_path
        self.ports = {
            "ftp": self.serve.ftp_port,
            "sftp": self.serve.sftp_port,
            "http": self.serve.http_port,
        }

    def start_block(self, block: Block) -> None:
        """A block that starts `serve` in the foreground: stop the running server, run the
        block in the background on free ports (the only change: `ALLMYSMS_MOCK_SERVER_*_PORT=0`
        in its environment), and wait for READY."""
        self.stop()
        self.server_out = self.base / f"block-{block.line}.out"
        env = self.env({f"ALLMYSMS_MOCK_SERVER_{p.upper()}_PORT": "0" for p in self.ports})
        with open(self.server_out, "wb") as out:
            self.proc = subprocess.Popen(
                ["bash", "-c", block.text],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self.proc

        def ready() -> re.Match[str] | None:
            for line in self.server_out.read_text(errors="replace").splitlines():
                if match := READY_RE.match(line):
                    return match
            assert proc.poll() is None, f"{block.where} exited {proc.returncode} before READY"
            return None

        match = wait_until(ready, 30, what=f"READY from {block.where}")
        assert match is not None
        self.ports = dict(zip(("ftp", "sftp", "http"), map(int, match.groups()), strict=True))

    def fingerprint(self) -> str:
        """The host key fingerprint the running server printed."""
        match = FINGERPRINT_RE.search(self.server_out.read_text(errors="replace"))
        assert match, "the server printed no host key fingerprint"
        return match.group(1)

    def stop(self) -> None:
        """Stop the running server, the default one with SIGTERM, one a block started with
        Ctrl-C (SIGINT to its process group), as the README says; it must exit 0 (contract 2)."""
        if self.serve is not None:
            serve, self.serve = self.serve, None
            try:
                assert serve.stop(signal.SIGTERM) == 0, serve.stderr()
            finally:
                serve.kill()
        if self.proc is not None:
            proc, self.proc = self.proc, None
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                raise AssertionError("the server started by a block ignored Ctrl-C") from None
            assert code == 0, self.server_out.read_text(errors="replace")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, data = http_json(self.http_url + path, method, body)
        assert status < 300, f"{method} {path}: {status} {data}"
        return data

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    # -- running blocks ------------------------------------------------------------------------

    def substitute(self, text: str) -> str:
        """The documented default ports replaced by the test server's ones."""
        return DEFAULT_PORT_RE.sub(lambda m: str(self.ports[DEFAULT_PORTS[m.group(1)]]), text)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return client_env(self.home, {"PATH": self.path, **(extra or {})})

    def run(self, script: str, *, errexit: bool = True, timeout: float = 60) -> Done:
        """Run `script` with bash in the working directory (`set -e -o pipefail` unless the
        block shows exit statuses itself); on a timeout its whole process group is killed."""
        text = self.substitute(script)
        args = ["bash", "-e", "-o", "pipefail", "-c", text] if errexit else ["bash", "-c", text]
        proc = subprocess.Popen(
            args,
            cwd=self.workdir,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(
                f"timed out after {timeout} s:\n{text}\n{out.decode(errors='replace')}"
            ) from None
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        return Done(text, proc.returncode, stdout, stderr)
