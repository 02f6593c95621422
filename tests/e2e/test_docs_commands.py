"""Every shell command of README.md and docs/*.md runs as written (issue 11).

Each fenced block labelled `sh`, `bash`, `shell` or `console` is either run here, in the
document's order, in one working directory against a real `allmysms-mock serve` (the only
rewriting: the default ports 2121/61022/8021 become the test server's, `tests/support/docs.py`),
with what the document says happens asserted; or it matches an exemption that names its reason
and the test that covers it. A new command block that is neither, an entry that matches no
block, and a fence without a language label all fail `test_every_command_block_is_run_or_exempt`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.docs import REPO, Block, Done, Session, blocks, console_parts, documents
from tests.support.serve import READY_RE, api_verdict, ftp_drop
from tests.support.tools import client_env, require_tool
from tests.support.waiting import wait_until

Check = Callable[[Session, Block, Done], None]


def nothing(session: Session, block: Block, done: Done) -> None:
    """Exit 0 is all the block promises."""


@dataclass(frozen=True)
class Run:
    """Run the block holding the line `anchor`, then `check` what the document says happens.
    `fresh`: `POST /api/reset` first, so names get no `-2`; `serve`: the block starts the
    server in the foreground; `after`: run it in the same shell, after the block holding that
    line (it uses that block's variables and server)."""

    anchor: str
    check: Check = nothing
    fresh: bool = False
    serve: bool = False
    after: str = ""
    before: Callable[[Session], None] | None = None


@dataclass(frozen=True)
class Exempt:
    """The block holding the line `anchor` is not run here: `reason`; `covered_by` names the
    tests (`path::function`) that exercise it instead, checked to exist."""

    anchor: str
    reason: str
    covered_by: tuple[str, ...] = field(default=())


# -- what the documents say happens ----------------------------------------------------------


def archived(*names: str) -> Check:
    """Each file ends in ARCHIVES as `TreatedByMSI_<name>` (README "What happens")."""

    def check(session: Session, block: Block, done: Done) -> None:
        for name in names:
            verdict = api_verdict(session.http_url, name, wait=10)
            assert verdict["status"] == "archived", (block.where, verdict)
            final = session.workdir / "allmysms-data/accounts/demo/ARCHIVES" / verdict["final_name"]
            assert final.is_file(), f"{block.where}: {final} is missing"

    return check


def first_file(session: Session, block: Block, done: Done) -> None:
    """README: archived, the SMS recorded, demo loses 15 credits, a recap in the Maildir."""
    archived("Promo_20301231120000_HQ.csv")(session, block, done)
    # The long poll printed the verdict itself: the recipe never races the processor.
    out = done.stdout.replace(" ", "")
    assert '"final_name":"TreatedByMSI_Promo_20301231120000_HQ.csv"' in out, done.explain()
    assert '"phone":"33612345678"' in done.stdout.replace(" ", ""), done.explain()
    assert session.api("GET", "/api/accounts/demo")["credits"] == 15000 - 15
    assert list((session.workdir / "allmysms-data/mailbox/new").iterdir())


def ftp_recipes(session: Session, block: Block, done: Done) -> None:
    """lftp then curl upload the same name: both archived, the second one as `-2`."""
    archived("TreatedByMSI_Promo_20300716120000_HQ.csv")(session, block, done)
    archived("TreatedByMSI_Promo_20300716120000_HQ-2.csv")(session, block, done)


def shows_fingerprint(session: Session, block: Block, done: Done) -> None:
    """`ssh-keygen -lf` prints the fingerprint `serve` printed, once per command."""
    wanted = session.fingerprint()
    lines = [line for line in done.stdout.splitlines() if line.startswith("256 SHA256:")]
    assert lines, done.explain()
    assert all(line.split()[1] == wanted for line in lines), (wanted, done.explain())


def sshpass_recipe(session: Session, block: Block, done: Done) -> None:
    shows_fingerprint(session, block, done)
    archived("Promo_20300101120000_HQ.csv")(session, block, done)


def host_key(session: Session, block: Block, done: Done) -> None:
    shows_fingerprint(session, block, done)
    assert len(done.stdout.splitlines()) == 2, done.explain()


def send_recipe(session: Session, block: Block, done: Done) -> None:
    """The line the README shows, then the second upload's numbered copy."""
    shown = [line[2:] for line in block.text.splitlines() if line.startswith("# archived:")]
    assert shown, block.where
    assert shown[0] in done.stdout.splitlines(), done.explain()
    assert "archived: /ARCHIVES/TreatedByMSI_Promo_20301231120000_HQ-2.csv" in done.stdout


def same_shape(doc: Any, got: Any, where: str = "$") -> None:
    """`got` has every key of the document's example, recursively, with values of its type."""
    if isinstance(doc, dict):
        assert isinstance(got, dict), (where, got)
        for key, value in doc.items():
            assert key in got, f"{where}.{key} missing from {got}"
            same_shape(value, got[key], f"{where}.{key}")
    elif isinstance(doc, list):
        assert isinstance(got, list), (where, got)
        if doc:
            assert got, f"{where}: empty, the document shows {doc}"
            same_shape(doc[0], got[0], f"{where}[0]")
    elif doc is not None:
        assert type(got) is type(doc) or {type(got), type(doc)} <= {int, float}, (where, got)


def like_doc(**values: Any) -> Check:
    """The answer has the shape of the document's example output, and these values."""

    def check(session: Session, block: Block, done: Done) -> None:
        got = json.loads(done.stdout)
        same_shape(block.output_json(), got)
        for path, want in values.items():
            value = got
            for part in path.split("__"):
                value = value[int(part)] if part.isdigit() else value[part]
            assert value == want, (block.where, path, value, want)

    return check


def exactly_doc(session: Session, block: Block, done: Done) -> None:
    assert json.loads(done.stdout) == block.output_json(), done.explain()


def health(session: Session, block: Block, done: Done) -> None:
    want = {"status": "ok", **{f"{p}_port": n for p, n in session.ports.items()}}
    assert json.loads(done.stdout) == want, done.explain()


def error_examples(session: Session, block: Block, done: Done) -> None:
    """Each `# <status> <body>` comment is what the command before it prints."""
    shown = [line.split(" ", 2)[2] for line in block.text.splitlines() if line.startswith("# ")]
    got = [json.loads(part) for part in done.stdout.replace("}{", "}\n{").splitlines()]
    assert got == [json.loads(body) for body in shown], done.explain()


def forced_verdict(session: Session, block: Block, done: Done) -> None:
    """docs/api.md "Faults": the rule added (201 with its id), the file invalid with the
    forced reason, the rule fired once, then removed."""
    added, files, listed, removed = (json.loads(line) for line in done.stdout.splitlines())
    assert (added["on"], added["action"], added["fired"]) == ("judge", "verdict", 0), added
    (forced,) = files["files"]
    assert (forced["status"], forced["reason"], forced["cost"]) == (
        "invalid",
        "Not_enough_credits",
        0,
    ), forced
    assert [f["fired"] for f in listed["faults"]] == [1], listed
    assert removed == {"removed": 1}


def http_drop(session: Session, block: Block, done: Done) -> None:
    """docs/api.md `POST /api/files`: the drop's answer, then the dropped file's verdict."""
    dropped, verdict = (json.loads(line) for line in done.stdout.splitlines())
    assert dropped == {"login": "demo", "name": PROMO, "bytes": len(API_FILE)}, done.explain()
    same_shape(block.output_json(), dropped)
    found = verdict["files"][-1]
    assert (found["original_name"], found["status"]) == (PROMO, "archived"), done.explain()


def console_output(session: Session, block: Block, done: Done) -> None:
    assert done.stdout.rstrip("\n") == console_parts(block.text)[1], done.explain()


def any_language(session: Session, block: Block, done: Done) -> None:
    """docs/testing.md: the verdict and the SMS, through the API of the server it started."""
    assert '"status":"archived"' in done.stdout.replace(" ", ""), done.explain()
    assert '"phone":"33612345678"' in done.stdout.replace(" ", ""), done.explain()


def send_in_same_shell(session: Session, block: Block, done: Done) -> None:
    assert "archived: /ARCHIVES/TreatedByMSI_Promo_20301231120000_HQ.csv" in done.stdout


def event_stream_verdict(session: Session, block: Block, done: Done) -> None:
    """docs/testing.md: the file's whole story in the stream, its verdict printed."""
    text = (session.workdir / "events.txt").read_text()
    kinds = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    for kind in ("session.login", "upload.closed", "file.renamed", "file.claimed"):
        assert kind in kinds, (kind, text)
    assert kinds[-2:] == ["mail.written", "file.finished"], text
    assert '"status":"archived"' in done.stdout, done.explain()


# -- the documents -----------------------------------------------------------------------------

DOCKER = (
    "needs a Docker engine and builds an image: the compose file and Dockerfile are checked by "
    "tests/integration/test_docker_static.py everywhere; where an engine starts, .ci/run "
    "builds the image and drives it (scripts/docker-smoke.sh, tests/containers)"
)
FIRST_FILE = b'"0612345678";"Bonjour STOP au 36180";"MaBoutique"\n'  # README's printf
# docs/api.md's examples show a file of 3 rows, the second a landline: 2 SMS, 30 credits.
API_FILE = FIRST_FILE + b'"0123456789";"Bonjour"\n"0698765432";"Bonjour STOP au 36180";"Boutique"\n'
# The files the documents take as the reader's own ("your CSV file").
INPUTS = {"campagne.csv": FIRST_FILE, "campaign.csv": FIRST_FILE}

SPECS: dict[str, list[Run | Exempt]] = {
    "README.md": [
        Exempt(
            "python3 -m venv .venv && .venv/bin/pip install '.[fixtures]'"
            " && .venv/bin/allmysms-mock serve  # 1. install, run",
            "the Set up commands: 1 installs from the package registry (run as written by the "
            "venv test); 2 is the whole suite, which .ci/run runs",
            (
                "tests/e2e/test_docs_commands.py::test_readme_install_command_in_a_fresh_venv",
                "tests/e2e/test_docs_commands.py::test_ci_runs_the_readme_test_command",
            ),
        ),
        Run("curl -s 'http://127.0.0.1:8021/api/messages?login=demo'", first_file, fresh=True),
        Run(
            "curl --user demo:demo -T campagne.csv"
            " ftp://127.0.0.1:2121/SEND_SMS/Promo_20300716120000_HQ.tmp \\",
            ftp_recipes,
            True,
        ),
        Run("ALLMYSMS_MOCK_PROCESSING_PICKUP_DELAY_SECONDS=1 allmysms-mock serve", serve=True),
        Run(
            "rclone moveto mock:SEND_SMS/Promo_20300716120000_HQ.tmp"
            " mock:SEND_SMS/Promo_20300716120000_HQ.csv",
            archived("Promo_20300716120000_HQ.csv"),
            fresh=True,
        ),
        Exempt(
            "$ sftp -P 61022 demo@127.0.0.1",
            "interactive (a password prompt, then `sftp>` commands): the next block runs the "
            "same put and rename from a batch file",
        ),
        Run(
            "ssh-keyscan -p 61022 -t ed25519 127.0.0.1 > allmysms_known_hosts", sshpass_recipe, True
        ),
        Run(
            '-Q "-rename /SEND_SMS/campaign.tmp /SEND_SMS/Promo_20300101120000_HQ.csv"',
            archived("Promo_20300101120000_HQ.csv"),
            fresh=True,
        ),
        Run(
            "rclone copyto campaign.csv mocksftp:SEND_SMS/Promo_20300201120000_HQ.tmp",
            archived("Promo_20300201120000_HQ.csv", "Promo_20300301120000_HQ.csv"),
            fresh=True,
        ),
        Run("ssh-keygen -lf allmysms-data/ssh_host_ed25519_key", host_key),
        Run(
            "allmysms-mock send Promo_20301231120000_HQ.csv --login demo --password demo"
            " --port 2121 --wait 30",
            send_recipe,
            fresh=True,
        ),
        Run(
            "$ allmysms-mock check fixtures/Credits_20300710143000_HQ.csv --credits 0; echo $?",
            console_output,
        ),
        Exempt(
            "docker compose up -d --build      # or docker-compose up -d --build (Compose v1)",
            DOCKER,
            ("tests/integration/test_docker_static.py::test_compose_file_is_valid",),
        ),
        Exempt(
            "docker build -t allmysms-mockserver .",
            DOCKER,
            ("tests/integration/test_docker_static.py::test_exposes_every_listener",),
        ),
    ],
    "docs/api.md": [
        Run("curl -fsS http://127.0.0.1:8021/health", health),
        Run("curl -s http://127.0.0.1:8021/api/accounts", like_doc(accounts__0__credits=14970)),
        Run("curl -s http://127.0.0.1:8021/api/accounts/demo", like_doc(credits=14970)),
        Run("curl -s -X POST http://127.0.0.1:8021/api/accounts \\", exactly_doc),
        Run("curl -s -X PATCH http://127.0.0.1:8021/api/accounts/acme \\", exactly_doc),
        Run(
            "last_id=$(curl -s 'http://127.0.0.1:8021/api/files?limit=1' \\",
            like_doc(
                files__0__final_name="TreatedByMSI_Promo_20301231120000_HQ-2.csv",
                files__0__status="archived",
            ),
        ),
        Run(
            "curl -s 'http://127.0.0.1:8021/api/files?name=Promo_20301231120000_HQ.csv&wait=30'",
            like_doc(files__0__status="archived", files__0__sms_count=2),
        ),
        Run(
            "curl -s 'http://127.0.0.1:8021/api/files?name=Nope_20301231120000_HQ.csv&wait=0.5'",
            exactly_doc,
        ),
        Run(
            "curl -s 'http://127.0.0.1:8021/api/messages?campaign=Promo&phone=0612345678'",
            # The reused-name example above sent the file a second time: 2 SMS to this phone.
            like_doc(messages__0__sender_applied="MaBoutique", count=2),
        ),
        Run("curl -s 'http://127.0.0.1:8021/api/mail?login=demo'", like_doc()),
        Run("curl -s -X POST http://127.0.0.1:8021/api/reset", exactly_doc),
        Run(
            "'http://127.0.0.1:8021/api/check?name=Promo_20301231120000_HQ.csv&login=acme'",
            like_doc(status="invalid", reason="Not_enough_credits"),
        ),
        Run(
            "'http://127.0.0.1:8021/api/files?login=demo&name=Promo_20301231120000_HQ.csv'",
            http_drop,
        ),
        Run("curl -s http://127.0.0.1:8021/api/clock", like_doc(frozen=False)),
        Run("""-d '{"now": "2030-07-16T12:00:00"}'""", exactly_doc),
        Run("""-d '{"advance_seconds": 3600}'""", exactly_doc),
        Run("""-d '{"real": true}'""", like_doc(frozen=False)),
        Run("curl -s http://127.0.0.1:8021/api/processing", exactly_doc),
        Run("""-H 'Content-Type: application/json' -d '{}'""", exactly_doc),
        Run("curl -s http://127.0.0.1:8021/api/faults", forced_verdict),
        Run("curl -s http://127.0.0.1:8021/api/nothing", error_examples),
    ],
    "docs/security.md": [
        Exempt(
            "ALLMYSMS_FUZZ_SECONDS=120 ALLMYSMS_FUZZ_SEED=7 python -m pytest"
            " tests/integration/test_fuzz_ftp.py tests/integration/test_fuzz_sftp.py -s",
            "a 4-minute fuzz run; the same fuzzers run in CI for about 5 s each",
            (
                "tests/integration/test_fuzz_ftp.py",
                "tests/integration/test_fuzz_sftp.py",
            ),
        ),
    ],
    "docs/testing.md": [
        Run("data=$(mktemp -d)", any_language),
        Run(
            '--port "$FTP_PORT" --wait 30          # add --sftp --port "$SFTP_PORT" for SFTP',
            send_in_same_shell,
            after="data=$(mktemp -d)",
        ),
        Run(
            'curl -sN --max-time 60 "$API/api/events?login=demo" > events.txt &',
            event_stream_verdict,
            after="data=$(mktemp -d)",
        ),
    ],
}
# What each document's run needs: the clients it calls, whether it talks to the server the
# reader started, and a file processed before it (docs/api.md shows one in its examples).
TOOLS = {
    "README.md": ("lftp", "curl", "rclone", "sftp", "sshpass", "ssh-keyscan", "ssh-keygen"),
    "docs/api.md": ("curl",),
    "docs/testing.md": ("curl",),
}
NEEDS_SERVER = {"README.md", "docs/api.md"}
# The README makes its file itself (printf); the others take the reader's.
PROMO = "Promo_20301231120000_HQ.csv"
WORKDIR_FILES = {"docs/api.md": {PROMO: API_FILE}, "docs/testing.md": {PROMO: FIRST_FILE}}
PROCESSED_FIRST = {"docs/api.md": PROMO}


def matches(entry: Run | Exempt, block: Block) -> bool:
    return block.is_command and block.has_line(entry.anchor)


def test_every_command_block_is_run_or_exempt() -> None:
    """Every command block matches exactly one entry, every entry exactly one block, every
    fence is labelled (an unlabelled one could hide a command), every cover exists."""
    problems: list[str] = []
    for doc in documents():
        entries = SPECS.get(doc, [])
        found = blocks(doc)
        problems += [f"{b.where}: label the fence (```sh, ```text, …)" for b in found if not b.lang]
        for block in filter(lambda b: b.is_command, found):
            hits = [e.anchor for e in entries if matches(e, block)]
            if len(hits) != 1:
                problems.append(f"{block.where}: matched by {hits}: run it or exempt it here")
        for entry in entries:
            if sum(matches(entry, b) for b in found) != 1:
                problems.append(f"{doc}: {entry.anchor!r} matches no single command block")
            for cover in entry.covered_by if isinstance(entry, Exempt) else ():
                path, _, name = cover.partition("::")
                text = (REPO / path).read_text() if (REPO / path).is_file() else ""
                if not text or (name and f"def {name}(" not in text):
                    problems.append(f"{doc}: {entry.anchor!r} is covered by a missing {cover}")
    assert set(SPECS) <= set(documents())
    assert not problems, "\n".join(problems)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    made = Session(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def run_block(session: Session, doc: str, entry: Run, found: list[Block]) -> None:
    hits = [b for b in found if matches(entry, b)]
    assert len(hits) == 1, f"{doc}: {entry.anchor!r} matches {len(hits)} command blocks"
    block = hits[0]
    if entry.serve:
        session.start_block(block)
        return
    if entry.fresh:
        session.api("POST", "/api/reset")
    if entry.before is not None:
        entry.before(session)
    if block.lang == "console":
        done = session.run(console_parts(block.text)[0], errexit=False)
    else:
        script = block.text
        if entry.after:
            first = next(b for b in found if b.is_command and b.has_line(entry.after))
            script = f"{first.text}\n{script}"
        done = session.run(script)
        assert done.returncode == 0, f"{block.where}: {done.explain()}"
    entry.check(session, block, done)


@pytest.mark.clients
@pytest.mark.timeout(120)
@pytest.mark.parametrize("doc", [d for d in SPECS if any(isinstance(e, Run) for e in SPECS[d])])
def test_doc_commands_run_as_written(session: Session, doc: str) -> None:
    """The document's command blocks, in its order, each exiting 0 and doing what it says."""
    for tool in TOOLS.get(doc, ()):
        require_tool(tool)
    for name, data in INPUTS.items():
        (session.workdir / name).write_bytes(data)
    (session.workdir / "fixtures").symlink_to(REPO / "fixtures")  # the workdir is the checkout
    for name, data in WORKDIR_FILES.get(doc, {}).items():
        (session.workdir / name).write_bytes(data)
    if doc in NEEDS_SERVER:
        session.start_default()
    if doc in PROCESSED_FIRST:
        name = PROCESSED_FIRST[doc]
        ftp_drop(session.ports["ftp"], name, (session.workdir / name).read_bytes())
        api_verdict(session.http_url, name)
    found = blocks(doc)
    for entry in SPECS[doc]:
        if isinstance(entry, Run):
            run_block(session, doc, entry, found)


# -- the Set up section ------------------------------------------------------------------------


def setup_commands() -> list[str]:
    """The README's two Set up commands, comments dropped."""
    block = next(b for b in blocks("README.md") if b.has_line(SPECS["README.md"][0].anchor))
    return [line.split("  #")[0].strip() for line in block.text.splitlines()]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs each step of the README's test command as written (issue 11)."""
    ci = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    for step in setup_commands()[1].split(" && "):
        assert step in ci, f".ci/run does not run the README's {step!r}"


IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".*_cache",
    ".hypothesis",
    "allmysms-data",
    "fixtures-out",
)


@pytest.mark.venv
@pytest.mark.timeout(600)
def test_readme_install_command_in_a_fresh_venv(tmp_path: Path) -> None:
    """README Set up, command 1, as written in a copy of the checkout: a fresh venv, the
    package installed from the registry, `serve` up on its defaults (ports 0 through the
    environment, so it cannot collide) until READY, the control room page served from the
    installed wheel (contract 10: `mockserver/web/` is package data), then Ctrl-C (SIGINT)
    exits 0."""
    command = setup_commands()[0]
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=IGNORED)
    out = tmp_path / "serve.out"
    env = client_env(
        tmp_path / "home", {f"ALLMYSMS_MOCK_SERVER_{p}_PORT": "0" for p in ("FTP", "SFTP", "HTTP")}
    )
    env.pop("PYTHONPATH", None)
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=checkout,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            text = out.read_text(errors="replace")
            assert proc.poll() is None, f"exited {proc.returncode}:\n{text}"
            return any(READY_RE.match(line) for line in text.splitlines())

        wait_until(ready, 540, interval=0.2, what="pip install then READY")
        assert (checkout / ".venv/bin/allmysms-mock").is_file()
        lines = out.read_text(errors="replace").splitlines()
        http_port = next(m for m in map(READY_RE.match, lines) if m).group(3)
        url = f"http://127.0.0.1:{http_port}/"
        with urllib.request.urlopen(url, timeout=30) as page:  # nosec B310: loopback
            assert page.headers["Content-Type"] == "text/html; charset=utf-8"
            assert page.read() == (REPO / "mockserver/web/index.html").read_bytes()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as the README says
        assert proc.wait(30) == 0, out.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
