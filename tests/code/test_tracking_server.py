"""Talking to a tracking server: credentials never in the URI MLflow prints, no long hangs."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from epochline.core.errors import TrackingUnavailable
from epochline.core.params import TrackingParams
from epochline.tracking import store


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MLFLOW_"):
            monkeypatch.delenv(key)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: a hung server or a black-holing proxy."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_fails_in_seconds(
    clean_env: None, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://u:s3cret-pw@127.0.0.1:{silent_server}")
    # No bound on the time here (tests check behaviour): a probe without its timeout would
    # hang this test, and the message names the timeout the probe gave up after.
    with pytest.raises(TrackingUnavailable) as caught:
        store.connect(TrackingParams())
    message = str(caught.value)
    assert f"does not answer within {store.PROBE_TIMEOUT_S} s" in message
    assert f"http://127.0.0.1:{silent_server} does not answer" in message
    assert "s3cret-pw" not in message and "\n" not in message


def test_credentials_move_from_the_uri_to_mlflows_variables(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://trainer:p%40ss@127.0.0.1:1/")
    clean = store._credentials_out_of_uri(store.tracking_uri())
    assert clean == "http://127.0.0.1:1/" == os.environ["MLFLOW_TRACKING_URI"]
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "trainer"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "p@ss"


def test_credentials_already_in_the_environment_win(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "from-env")
    assert store._credentials_out_of_uri("https://a:b@mlflow.example/") == (
        "https://mlflow.example/"
    )
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "from-env"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://u:pw@host:5000", "http://host:5000"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("https://token@host/path", "https://host/path"),
    ],
)
def test_safe_uri_drops_credentials(uri: str, shown: str) -> None:
    assert store.safe_uri(uri) == shown
