"""The one typed-option checker (nvmc.ir.options) and the owners that name its errors: a pass,
a target file and key, a --set, a sweep spec."""

import pytest

from nvmc.ir.options import MAX_CAPACITY, MAX_COUNT, Option, OptionValueError, format_value, show_value


@pytest.mark.parametrize("option, value, reason", [
    (Option("int"), 64.5, "expected a whole number, got 64.5"),
    (Option("int"), True, "expected a whole number, got True"),
    (Option("int"), 1 << 70, "expected a 64-bit integer, got an integer of 71 bits"),
    (Option("float"), "1.0", "expected a number, got '1.0'"),
    (Option("float"), float("nan"), "expected a number, got nan"),
    (Option("float"), 1 << 1100, "expected a number a float holds"),
    (Option("bool"), 1, "expected true or false, got 1"),
    (Option("str"), 3, "expected a string, got 3"),
    (Option("str", nvmc_limits=True), "", "expected a non-empty string, got ''"),
    (Option("str", nvmc_limits=True), "x" * 300, "expected a name of at most 200 printable characters"),
])
def test_type_errors_say_what_was_expected_and_what_was_given(option, value, reason):
    with pytest.raises(OptionValueError) as e:
        option.check(value)
    assert reason in str(e.value)
    assert e.value.value is value or e.value.value == value


@pytest.mark.parametrize("option, value, reason", [
    (Option("int", minimum=2, maximum=16), 1, "must be >= 2, got 1"),
    (Option("int", minimum=2, maximum=16), 17, "must be <= 16, got 17"),
    (Option("int", positive=True), 0, "must be positive, got 0"),
    (Option("float", positive=True, minimum=0.0), -1.0, "must be >= 0.0, got -1.0"),
    (Option("int", nvmc_limits=True), MAX_COUNT + 1, f"must be <= {MAX_COUNT} (nvmc's range for a count)"),
    (Option("float", nvmc_limits=True), 1e31, "expected a finite number of magnitude at most 1e+30"),
    (Option("float", nvmc_limits=True), 1e-31, "is too small for nvmc"),
])
def test_bounds(option, value, reason):
    with pytest.raises(OptionValueError) as e:
        option.check(value)
    assert reason in str(e.value)


def test_values_in_range_come_back_canonical():
    assert Option("int", minimum=2, maximum=16).check(16) == 16
    assert Option("float").check(1) == 1.0 and isinstance(Option("float").check(1), float)
    assert Option("float").check(float("inf")) == float("inf")   # unbounded: no nvmc range asked for
    assert Option("bool").check(False) is False
    assert Option("str").check("") == ""
    assert Option("int", positive=True, minimum=0).check(0) == 0   # a minimum overrides 'positive'


def test_choices_suggest_a_close_one():
    option = Option("choice", choices=("os", "ws", "is"))
    assert option.check("ws") == "ws"
    with pytest.raises(OptionValueError) as e:
        option.check("wss")
    assert str(e.value) == "expected one of 'os', 'ws', 'is', got 'wss' — did you mean 'ws'?"
    assert e.value.allowed == "one of os, ws, is" and e.value.suggestion == " — did you mean 'ws'?"
    with pytest.raises(OptionValueError, match="expected one of"):
        option.check(3)


def test_capacities_parse_through_units():
    option = Option("capacity", nvmc_limits=True)
    assert option.check("4MiB") == option.check("4096KiB") == option.check(4 << 20) == 4 << 20
    for bad, reason in [("4 parsecs", "is not a capacity"), (1.5, "a whole number of bytes"), ("0B", "positive"),
                        (MAX_CAPACITY * 2, "beyond nvmc's range")]:
        with pytest.raises(OptionValueError, match=reason):
            option.check(bad)
    assert Option("capacity").check(MAX_CAPACITY * 2) == MAX_CAPACITY * 2   # nvmc's range only where asked


@pytest.mark.parametrize("option, allowed", [
    (Option("int", minimum=2, maximum=16), "an integer in [2, 16]"),
    (Option("float", minimum=0.0), "a number >= 0.0"),
    (Option("int", maximum=8), "an integer <= 8"),
    (Option("int", positive=True), "a positive integer"),
    (Option("choice", choices=("channel", "tensor")), "one of channel, tensor"),
    (Option("bool"), "true or false"),
    (Option("capacity"), "a capacity such as '4MiB'"),
])
def test_allowed_in_words(option, allowed):
    assert option.allowed() == allowed


def test_values_as_written_and_as_quoted():
    assert [format_value(v) for v in (True, 0.5, 8, "channel", "a b")] == ["true", "0.5", "8", "channel", '"a b"']
    assert show_value("x" * 70) == "'" + "x" * 60 + "'..." and show_value(1 << 64) == "an integer of 65 bits"


# ------------------------------------------------------------------ the owners name the option
def test_a_pass_option_error_names_the_pass_the_option_the_value_and_what_is_allowed():
    from nvmc.passes import OptionError, make_pass

    with pytest.raises(OptionError) as e:
        make_pass("quantize", bits=1 << 70)
    assert e.value.message == "option 'bits' of 'quantize' takes an integer in [2, 8], not an integer of 71 bits"


def test_a_target_error_names_the_file_line_key_and_value(tmp_path):
    from nvmc.backends import TargetError, load_target
    from nvmc.backends.target import TARGETS_DIR

    text = (TARGETS_DIR / "sram.toml").read_text().replace("[llc]", "[llc]\nslices = -4", 1)
    path = tmp_path / "mine.toml"
    path.write_text(text)
    line = text.splitlines().index("slices = -4") + 1
    with pytest.raises(TargetError) as e:
        load_target(path)
    assert e.value.message == "[llc] slices = -4: must be positive, got -4" and e.value.where == f"{path}:{line}"
    with pytest.raises(TargetError) as e:
        load_target("sram", ["llc.iso=sideway"])
    assert e.value.message.startswith("llc.iso: expected one of") and e.value.where == "--set llc.iso=sideway"


def test_a_sweep_spec_error_names_the_spec_line_table_key_and_value(tmp_path):
    from nvmc.sweep.spec import SpecError, load_spec

    path = tmp_path / "s.toml"
    path.write_text('schema = "nvmc.sweep/1"\nmodels = ["m.onnx"]\ntargets = ["sram"]\n\n[generate]\n'
                    'prompt = 8\ntokens = 1.5\n')
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert e.value.message == "[generate] tokens = 1.5: expected a whole number, got 1.5"
    assert e.value.where == f"{path}:7"
