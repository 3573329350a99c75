"""A deployment file's command line put through the real parsers: the service's settings
(`mnist-serve`, pydantic-settings) and mnist-train's argparse, with the environment the
file gives it. An unknown flag, a misspelt MNIST_ variable or a bad value fails the test."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from argparse import Namespace
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.settings import ENV_PREFIX, Settings
from tests.conftest import REPO
from training.cli import parse_args as parse_train_args


def dockerfile_command(target: str) -> list[str]:
    """The CMD of one of the Dockerfile's targets (exec form)."""
    text = (REPO / "Dockerfile").read_text()
    stage = text.split(f" AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
    return json.loads(re.search(r"^CMD (\[.*\])$", stage, re.M)[1])


def flag_value(words: list[str], flag: str) -> str | None:
    """The value after `flag` (or in `flag=value`), if the flag is there."""
    for index, word in enumerate(words):
        if word == flag:
            return words[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def service_settings(words: list[str], env: dict[str, str], monkeypatch: Any) -> Settings:
    """The settings `python -m service.cli` (the serve image's command) builds from this
    command line and environment, through Settings' own parser."""
    assert words[:3] == dockerfile_command("serve")[:3], words[:3]
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(ENV_PREFIX):
            # Settings ignores a variable that names no field: a misspelling would pass.
            field = name.removeprefix(ENV_PREFIX).lower()
            assert field in Settings.model_fields, f"{name} is no setting of the service"
        monkeypatch.setenv(name, value)
    args = words[3:]
    try:
        return Settings(_cli_parse_args=args, _cli_exit_on_error=False)
    except (SettingsError, ValidationError) as exc:
        pytest.fail(f"mnist-serve {' '.join(args)}: {exc}")


def drain_seconds(settings: Settings, words: list[str]) -> float:
    """How long the server keeps serving after SIGTERM."""
    return float(settings.drain_seconds)


def train_args(words: list[str], env: dict[str, str], monkeypatch: Any) -> Namespace:
    """What `python -m training.cli` (the train image's command) parses from this command
    line and environment, through mnist-train's own parser."""
    assert words[:3] == dockerfile_command("train")[:3], words[:3]
    for name in [n for n in os.environ if n.startswith(("MNIST_", "PUSHGATEWAY"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        try:
            return parse_train_args(words[3:])
        except SystemExit:
            pytest.fail(f"mnist-train {' '.join(words[3:])}: {errors.getvalue()}")
