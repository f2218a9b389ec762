"""Settings is typed from the settings table: one field per setting, so mypy catches a misspelled setting."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from etl.config import SETTINGS, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
# The Python type of each kind of the table: a list of names is a tuple of strings.
_TYPES: dict[type, typing.Any] = {str: str, int: int, float: float, bool: bool, tuple: tuple[str, ...]}


def _field_type(setting) -> typing.Any:
    """What Settings must declare for a setting: its kind's type, or that or None when it has no default."""
    kind = _TYPES[setting.kind]
    return kind | None if setting.default is None else kind


def test_settings_has_one_field_per_setting_of_the_table_with_its_type_and_default():
    fields = dataclasses.fields(Settings)
    hints = typing.get_type_hints(Settings)
    assert [field.name for field in fields] == [*(setting.name for setting in SETTINGS), "sources", "accounts", "warnings"]
    for setting, field in zip(SETTINGS, fields[: len(SETTINGS)], strict=True):
        assert (setting.name, hints[field.name]) == (setting.name, _field_type(setting))
        assert (setting.name, type(field.default), field.default) == (setting.name, type(setting.default), setting.default)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.kind in (int, float)], ids=lambda setting: setting.name)
def test_a_number_is_loaded_as_its_fields_type(tmp_path, setting):
    """What mypy is told holds at run time: 3 in the file is 3.0 for a float setting, 3.0 is 3 for an int one."""
    whole = int(max(setting.minimum or 0, setting.above or 0)) + 1
    path = tmp_path / "aai-etl.toml"
    path.write_text(f"{setting.name} = {whole if setting.kind is float else float(whole)}\n")
    for settings in (load_settings(path, {}), load_settings(None, {setting.variable: str(whole)})):
        assert type(getattr(settings, setting.name)) is setting.kind


def test_mypy_names_a_misspelled_setting(tmp_path):
    """A misspelled setting fails the type check instead of an AttributeError in the middle of a run."""
    for name, attribute in (("misspelled", "reqests_per_minute"), ("spelled_right", "requests_per_minute")):
        (tmp_path / f"{name}.py").write_text(
            "from etl.config import Settings\n\n\n"
            f"def pace(settings: Settings) -> float:\n    return settings.{attribute}\n"
        )
    # From the checkout: mypy finds etl there, with the project's own mypy settings.
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", str(tmp_path / "misspelled.py"), str(tmp_path / "spelled_right.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    errors = [line.split(":", 2) for line in checked.stdout.splitlines() if ": error:" in line]
    assert (checked.returncode, len(errors)) == (1, 1), checked.stdout + checked.stderr
    (where, line, message), = errors
    assert (Path(where).name, line) == ("misspelled.py", "5") and '"reqests_per_minute"' in message, checked.stdout
