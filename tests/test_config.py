"""Settings: environment overrides and checks of the chat settings."""

from __future__ import annotations

import pytest

from switchboard.config import Settings


def test_device_limits_default_to_one_mobile() -> None:
    settings = Settings()

    assert settings.max_online_mobile == 1
    assert settings.max_online_web == 0
    assert settings.max_online_desktop == 0
    assert settings.max_online_other == 0


def test_device_limits_from_environment() -> None:
    settings = Settings()

    settings.apply_environ(
        {"SWITCHBOARD_MAX_ONLINE_MOBILE": "2", "SWITCHBOARD_MAX_ONLINE_WEB": "3"}
    )

    assert settings.max_online_mobile == 2
    assert settings.max_online_web == 3
    settings.validate()


def test_negative_device_limit_is_invalid() -> None:
    settings = Settings(max_online_desktop=-1)

    with pytest.raises(ValueError, match="max_online_desktop=-1"):
        settings.validate()


def test_unparsable_device_limit_names_variable() -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_MAX_ONLINE_MOBILE"):
        Settings().apply_environ({"SWITCHBOARD_MAX_ONLINE_MOBILE": "one"})


def test_recall_and_edit_windows() -> None:
    settings = Settings()
    assert settings.recall_window == 120.0
    assert settings.edit_window == 0.0

    settings.apply_environ({"SWITCHBOARD_RECALL_WINDOW": "30.5"})

    assert settings.recall_window == 30.5


def test_negative_window_is_invalid() -> None:
    settings = Settings(edit_window=-1.0)

    with pytest.raises(ValueError, match="edit_window=-1"):
        settings.validate()


@pytest.mark.parametrize(
    ("text", "history"), [("join", 0), ("all", None), ("25", 25), (" ALL ", None)]
)
def test_group_history_on_join(text: str, history: int | None) -> None:
    settings = Settings(group_history_on_join=text)

    settings.validate()

    assert settings.history_on_join == history


def test_invalid_group_history_on_join() -> None:
    settings = Settings(group_history_on_join="some")

    with pytest.raises(ValueError, match="group_history_on_join"):
        settings.validate()
