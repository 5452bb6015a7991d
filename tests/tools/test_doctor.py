"""Tests of tools.doctor: the environment check a learner or teacher runs first (make doctor)."""

from __future__ import annotations

import importlib.metadata as metadata

import pytest

from tools import doctor


def fake_installed(versions):
    def installed(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    return installed


def test_read_pins(tmp_path):
    pins = doctor.read_pins()
    assert pins["torch"] == "2.13.0" and "ipywidgets" in pins and "jupyterlab" in pins
    path = tmp_path / "req.txt"
    path.write_text("# comment\nfoo==1.2  # why\n\nbar_baz==0.1.post1\n")
    assert doctor.read_pins(path) == {"foo": "1.2", "bar_baz": "0.1.post1"}
    path.write_text("foo>=1.2\n")
    with pytest.raises(ValueError, match=r"req\.txt:1: expected 'name==version'"):
        doctor.read_pins(path)
    with pytest.raises(FileNotFoundError, match="missing"):
        doctor.read_pins(tmp_path / "missing.txt")


def test_check_pins_reports_missing_and_wrong_versions():
    checks = doctor.check_pins(
        {"torch": "2.13.0", "numpy": "2.4.6", "scipy": "1.17.1"},
        fake_installed({"torch": "2.13.0+cpu", "numpy": "1.26.0"}),
    )
    by_name = {c.name: c for c in checks}
    assert by_name["torch"].ok  # a local build tag is the same version
    assert not by_name["numpy"].ok and "1.26.0 installed, 2.4.6 pinned" in by_name["numpy"].detail
    assert "numpy==2.4.6" in by_name["numpy"].fix
    assert not by_name["scipy"].ok and by_name["scipy"].detail == "not installed"
    assert "FAIL" in by_name["scipy"].line() and "fix:" in by_name["scipy"].line()


def test_widget_pairing():
    good = {"ipywidgets": "8.1.9", "jupyterlab_widgets": "3.0.17", "jupyterlab": "4.6.6"}
    assert doctor.check_widget_pairing(fake_installed(good)).ok
    bad = doctor.check_widget_pairing(fake_installed({**good, "jupyterlab_widgets": "1.1.0"}))
    assert not bad.ok and "do not work together" in bad.detail and "restart JupyterLab" in bad.fix
    missing = doctor.check_widget_pairing(fake_installed({"ipywidgets": "8.1.9"}))
    assert not missing.ok and "not installed" in missing.detail


def test_python_version():
    assert doctor.check_python((3, 11, 7)).ok and doctor.check_python((3, 13, 0)).ok
    old = doctor.check_python((3, 9, 18))
    assert not old.ok and "too old" in old.detail


def test_this_environment_passes_every_check(capsys):
    """The pinned environment of this checkout passes the doctor (it fails when a pin drifts)."""
    checks = doctor.run_checks()
    failed = [c.line() for c in checks if not c.ok]
    assert not failed, "\n".join(failed)
    assert {"Python", "torch", "widgets", "isodl", "offline data", "training run"} <= {c.name for c in checks}
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("OK  ") == len(checks) and f"{len(checks)} of {len(checks)} checks OK." in out
