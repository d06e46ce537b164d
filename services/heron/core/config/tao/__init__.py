"""TAO spec files (protobuf text or YAML) as TAO reads them: the loaders below, with every
finding at file:line. The modules: `load` (kinds and loading), `text_format` and `yaml_format`
(the two syntaxes), `checks` (what TAO would refuse or silently misread), `paths` (field
paths and their lines), `defaults` (TAO's values for what a spec leaves out).
See docs/tao-specs.md."""

from heron.core.config.tao.load import (
    INFERENCE_SPEC_NOTE,
    REDACTED,
    LoadedSpec,
    check_inference_spec,
    is_inference_spec,
    load_any_spec,
    load_dataset_convert_spec,
    load_experiment_spec,
    spec_to_dict,
    top_level_names,
)

__all__ = [
    "INFERENCE_SPEC_NOTE",
    "REDACTED",
    "LoadedSpec",
    "check_inference_spec",
    "is_inference_spec",
    "load_any_spec",
    "load_dataset_convert_spec",
    "load_experiment_spec",
    "spec_to_dict",
    "top_level_names",
]
