"""The pytest plugin (contract 7: "a pytest plugin (entry point pytest11) gives the fixture
allmysms_mock, one fresh server a test"), driven through `pytester` in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

# The snippet the README shows under "Use it from pytest", verbatim.
README_EXAMPLE = """
import ftplib, io

def test_campaign_is_sent(allmysms_mock):
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", allmysms_mock.ftp_port)
        ftp.login("demo", "demo")
        ftp.storbinary("STOR SEND_SMS/promo.tmp", io.BytesIO(b'"0612345678";"Bonjour"'))
        ftp.rename("SEND_SMS/promo.tmp", "SEND_SMS/Promo_20301231120000_HQ.csv")
    assert allmysms_mock.wait_for_file("Promo_20301231120000_HQ.csv")["status"] == "archived"
    assert allmysms_mock.messages(campaign="Promo")[0]["phone"] == "33612345678"
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`pytest` in a subprocess with only the plugins named here: installed plugins (Faker's,
    Hypothesis's, and ours once the package is installed) are not auto-loaded, which keeps
    each run fast and loads ours exactly once."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run_(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            "-p",
            "mockserver.pytest_plugin",
            "-p",
            "pytest_timeout",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "--timeout",
            "120",
            *args,
        )

    return run_


def test_readme_example_passes(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    """The README's ≤10-line example: upload with ftplib (`.tmp` then rename, manual 4.2),
    wait for the verdict, assert on the SMS."""
    assert len(README_EXAMPLE.strip().splitlines()) <= 11  # import + blank + the 9-line test
    pytester.makepyfile(test_readme=README_EXAMPLE)
    result = run()
    result.assert_outcomes(passed=1)


def test_each_test_gets_a_clean_platform_from_one_server(
    pytester: pytest.Pytester,
    run,  # type: ignore[no-untyped-def]
) -> None:
    """Contract 7 "one fresh server a test": state does not leak between tests, while the
    server itself is started once per session (same ports) for speed."""
    pytester.makepyfile(
        test_fresh=README_EXAMPLE
        + textwrap.dedent(
            """
            PORTS = []

            def test_second_sees_nothing_of_the_first(allmysms_mock):
                PORTS.append(allmysms_mock.http_port)
                assert allmysms_mock.files() == []
                assert allmysms_mock.messages() == []
                assert allmysms_mock.mail() == []
                assert allmysms_mock.account("demo")["credits"] == 15000
                allmysms_mock.add_account("temp", "pw")

            def test_third_runs_on_the_same_server(allmysms_mock):
                PORTS.append(allmysms_mock.http_port)
                assert PORTS[0] == PORTS[1]
                assert allmysms_mock.account("temp") is None
            """
        )
    )
    run().assert_outcomes(passed=3)


def test_settings_override_starts_a_separate_server(
    pytester: pytest.Pytester,
    run,  # type: ignore[no-untyped-def]
) -> None:
    """`allmysms_mock_settings` overridden in a module gives that module a server with those
    settings; other modules keep the default server."""
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def seen():
            return {}
        """
    )
    pytester.makepyfile(
        test_a_custom="""
        import pytest

        @pytest.fixture
        def allmysms_mock_settings():
            return {
                "accounts": [{"login": "acme", "password": "pw", "credits": 3}],
                "limits.max_file_bytes": 1000,
                "delay_seconds": 0.0,
            }

        def test_custom_accounts(allmysms_mock, seen):
            seen["custom"] = allmysms_mock.http_port
            assert allmysms_mock.account("acme")["credits"] == 3
            assert allmysms_mock.account("demo") is None
            assert allmysms_mock.config.limits.max_file_bytes == 1000
        """,
        test_b_default="""
        def test_default_accounts(allmysms_mock, seen):
            assert allmysms_mock.http_port != seen["custom"]
            assert allmysms_mock.account("demo")["credits"] == 15000
            assert allmysms_mock.account("acme") is None
        """,
    )
    run().assert_outcomes(passed=2)


def test_bad_settings_are_one_clear_line(
    pytester: pytest.Pytester,
    run,  # type: ignore[no-untyped-def]
) -> None:
    """A bad setting fails the test's set-up with the config error naming the key, not a
    traceback into the plugin."""
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.fixture
        def allmysms_mock_settings():
            return {"processing.delay_seconds": "soon"}

        def test_never_runs(allmysms_mock):
            pass
        """
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*allmysms_mock: *processing.delay_seconds*"])
    result.stdout.no_fnmatch_line("*pytest_plugin.py:*")


def test_works_under_xdist(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    """`pytest -n 2`: each worker has its own server on its own free ports."""
    pytester.makepyfile(
        test_parallel="""
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_upload(allmysms_mock, i):
            import ftplib, io, os
            name = f"Par{i}_20301231120000_HQ.csv"
            with ftplib.FTP() as ftp:
                ftp.connect("127.0.0.1", allmysms_mock.ftp_port)
                ftp.login("demo", "demo")
                ftp.storbinary(f"STOR SEND_SMS/{name}.tmp", io.BytesIO(b'"0612345678";"x"'))
                ftp.rename(f"SEND_SMS/{name}.tmp", f"SEND_SMS/{name}")
            assert allmysms_mock.wait_for_file(name)["status"] == "archived"
            assert len(allmysms_mock.files()) == 1
        """
    )
    result = run("-p", "xdist.plugin", "-n", "2")
    result.assert_outcomes(passed=4)


def test_unused_fixture_costs_nothing(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    """A run that never asks for `allmysms_mock` starts no server and imports none of it."""
    pytester.makepyfile(
        test_plain="""
        import sys, threading

        def test_plain():
            heavy = {"aiohttp", "asyncssh", "pyftpdlib", "watchdog", "mockserver.app"}
            assert heavy.isdisjoint(sys.modules)
            assert not [t for t in threading.enumerate() if "allmysms" in t.name]
        """
    )
    run().assert_outcomes(passed=1)


def test_importing_the_package_and_plugin_is_cheap() -> None:
    """`import mockserver` stays cheap: no server library is imported until one is needed."""
    code = (
        "import sys, mockserver, mockserver.pytest_plugin;"
        "print(sorted(m for m in ('aiohttp', 'asyncssh', 'pyftpdlib', 'watchdog', 'faker',"
        " 'mockserver.app') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
