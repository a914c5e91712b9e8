"""The README's configuration table must list every setting, with its environment variable name."""

from pathlib import Path

from server.security.config import SecuritySettings
from server.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    names = [*Settings.model_fields, *SecuritySettings.model_fields]
    missing = [name for name in names if f"`PRIORGATE_{name.upper()}`" not in README]
    assert not missing, f"settings missing from the README configuration table: {missing}"


def test_readme_gives_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
