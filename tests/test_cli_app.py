"""How the `latentspace` command is put together: each verb lives in the module COMMANDS says, and a console run
imports only the module of the verb it names."""
from __future__ import annotations

import subprocess
import sys

import pytest

from latentspace.cli.main import COMMANDS, app_for, build_app


def verbs(app) -> set[str]:
    return {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}


@pytest.mark.parametrize("module", COMMANDS)
def test_each_module_registers_the_verbs_listed_for_it(module):
    assert verbs(build_app((module,))) == set(COMMANDS[module])


def test_the_full_command_has_every_verb_once():
    listed = [v for vs in COMMANDS.values() for v in vs]
    assert len(listed) == len(set(listed)) and verbs(build_app()) == set(listed)


@pytest.mark.parametrize("argv, expected", [
    (["explore", "zoo:faces", "--port", "0"], {"explore"}),
    (["draw", "zoo:faces", "glasses"], {"describe", "draw"}),
    (["data", "info", "mnist"], {"data"}),
])
def test_a_console_run_builds_only_the_module_of_its_verb(argv, expected):
    assert verbs(app_for(argv)) == expected


@pytest.mark.parametrize("argv", [[], ["--help"], ["explroe"]])
def test_help_no_verb_or_an_unknown_one_get_every_verb(argv):
    assert verbs(app_for(argv)) == {v for vs in COMMANDS.values() for v in vs}


def test_a_console_run_of_one_verb_leaves_the_other_modules_unimported():
    code = ("import sys; from latentspace.cli.main import app_for; app_for(['zoo']); "
            "print(sorted(m for m in sys.modules if m.startswith('latentspace.cli.') and m != 'latentspace.cli.main'))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "latentspace.cli.zoo" in loaded and "latentspace.cli.demo" not in loaded and "latentspace.cli.train" not in loaded
