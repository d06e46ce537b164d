"""Typed form of a Gst-nvinfer config file: [property], [class-attrs-all], [class-attrs-N], labels.

Field names are DeepStream's keys in snake_case (`net-scale-factor` → `net_scale_factor`;
`minBoxes` → `min_boxes`). Defaults are those of gstnvinfer_property_parser.h / the Gst-nvinfer
documentation, so a file that omits a key means what it means to DeepStream.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    model_validator,
)

from heron.core.config.problems import Problems
from heron.core.config.values import (
    Color,
    FloatList,
    IntList,
    NonNeg,
    Strict,
    StrList,
    coded,
    ds,
)


class NetworkMode(StrEnum):
    FP32 = "fp32"
    INT8 = "int8"
    FP16 = "fp16"
    BEST = "best"


NETWORK_MODES = {0: NetworkMode.FP32, 1: NetworkMode.INT8, 2: NetworkMode.FP16, 3: NetworkMode.BEST}


class ClusterMode(StrEnum):
    GROUP_RECTANGLES = "group_rectangles"
    DBSCAN = "dbscan"
    NMS = "nms"
    HYBRID = "dbscan_nms_hybrid"
    NONE = "none"


CLUSTER_MODES = {
    0: ClusterMode.GROUP_RECTANGLES,
    1: ClusterMode.DBSCAN,
    2: ClusterMode.NMS,
    3: ClusterMode.HYBRID,
    4: ClusterMode.NONE,
}


class ColorFormat(StrEnum):
    RGB = "rgb"
    BGR = "bgr"
    GRAY = "gray"


COLOR_FORMATS = {0: ColorFormat.RGB, 1: ColorFormat.BGR, 2: ColorFormat.GRAY}


class ProcessMode(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


PROCESS_MODES = {1: ProcessMode.PRIMARY, 2: ProcessMode.SECONDARY}


class NetworkType(StrEnum):
    DETECTOR = "detector"
    CLASSIFIER = "classifier"
    SEGMENTATION = "segmentation"
    INSTANCE_SEGMENTATION = "instance_segmentation"
    OTHER = "other"


NETWORK_TYPES = {
    0: NetworkType.DETECTOR,
    1: NetworkType.CLASSIFIER,
    2: NetworkType.SEGMENTATION,
    3: NetworkType.INSTANCE_SEGMENTATION,
    100: NetworkType.OTHER,
}

MAX_BATCH_SIZE = 1024  # NVDSINFER_MAX_BATCH_SIZE


class InferProperty(Strict):
    """The [property] group."""

    gpu_id: NonNeg = Field(0, description="GPU to run on.")
    gie_unique_id: int = Field(1, ge=1, description="ID this engine stamps on its metadata.")
    process_mode: Annotated[ProcessMode, BeforeValidator(coded(ProcessMode, PROCESS_MODES))] = (
        Field(ProcessMode.PRIMARY, description="1 primary (full frames), 2 secondary (objects).")
    )
    interval: NonNeg = Field(0, description="Frames skipped between inferences (primary only).")
    batch_size: int = Field(1, ge=1, le=MAX_BATCH_SIZE, description="Frames/objects per batch.")
    network_mode: Annotated[NetworkMode, BeforeValidator(coded(NetworkMode, NETWORK_MODES))] = (
        Field(NetworkMode.FP32, description="0 FP32, 1 INT8, 2 FP16, 3 best available.")
    )
    network_type: Annotated[NetworkType, BeforeValidator(coded(NetworkType, NETWORK_TYPES))] = (
        Field(NetworkType.DETECTOR, description="0 detector, 1 classifier, 2 segmentation, ...")
    )
    is_classifier: bool | None = Field(
        None, description="Legacy spelling of network-type; used only when network-type is unset."
    )
    net_scale_factor: float = Field(1.0, gt=0, description="y = net_scale_factor * (x - mean).")
    offsets: FloatList = Field(
        default_factory=list, max_length=4, description="Per-channel means subtracted first."
    )
    model_color_format: Annotated[
        ColorFormat, BeforeValidator(coded(ColorFormat, COLOR_FORMATS))
    ] = Field(ColorFormat.RGB, description="0 RGB, 1 BGR, 2 GRAY.")
    infer_dims: IntList | None = Field(
        None, min_length=3, max_length=3, description="Network input c;h;w."
    )
    input_dims: IntList | None = Field(
        None,
        min_length=3,
        max_length=4,
        description="Legacy UFF input c;h;w[;order] (order 0 NCHW, 1 NHWC).",
    )
    uff_input_dims: IntList | None = Field(
        None, min_length=4, max_length=4, description="UFF input c;h;w;order."
    )
    uff_input_order: int | None = Field(
        None, ge=0, le=1, description="UFF input order: 0 NCHW, 1 NHWC."
    )
    uff_input_blob_name: str | None = Field(
        None, description="Name of the UFF/TAO model's input layer."
    )
    output_blob_names: StrList = Field(default_factory=list, description="Output layer names.")
    maintain_aspect_ratio: bool = Field(False, description="Pad instead of stretching.")
    symmetric_padding: bool = Field(
        False, description="Pad on all sides (with maintain-aspect-ratio)."
    )
    onnx_file: Path | None = Field(None, description="ONNX model.")
    model_engine_file: Path | None = Field(None, description="Serialized TensorRT engine.")
    int8_calib_file: Path | None = Field(None, description="INT8 calibration cache.")
    tlt_encoded_model: Path | None = Field(None, description="TAO/TLT .etlt model.")
    tlt_model_key: SecretStr | None = Field(None, description="Key of the .etlt; a secret.")
    uff_file: Path | None = Field(None, description="UFF model.")
    model_file: Path | None = Field(None, description="Caffe model.")
    proto_file: Path | None = Field(None, description="Caffe prototxt.")
    mean_file: Path | None = Field(None, description="Mean image (PPM) subtracted from input.")
    labelfile_path: Path | None = Field(None, description="Labels file, resolved and parsed.")
    num_detected_classes: int | None = Field(None, ge=1, description="Detector classes.")
    cluster_mode: Annotated[ClusterMode, BeforeValidator(coded(ClusterMode, CLUSTER_MODES))] = (
        Field(
            ClusterMode.GROUP_RECTANGLES,
            description="0 groupRectangles, 1 DBSCAN, 2 NMS, 3 DBSCAN+NMS, 4 none.",
        )
    )
    classifier_threshold: float | None = Field(
        None, ge=0, le=1, description="Classifiers: minimum probability of a label."
    )
    classifier_async_mode: bool = Field(
        False, description="Classify asynchronously (secondary with tracker)."
    )
    classifier_type: str | None = Field(
        None, description="Name of the attribute a classifier outputs."
    )
    segmentation_threshold: float | None = Field(
        None, ge=0, le=1, description="Segmentation: minimum class probability."
    )
    operate_on_gie_id: int | None = Field(
        None, ge=1, description="Secondary: objects of this engine only."
    )
    operate_on_class_ids: IntList = Field(
        default_factory=list, description="Secondary: objects of these classes only."
    )
    filter_out_class_ids: IntList = Field(
        default_factory=list, description="Drop detections of these classes."
    )
    input_object_min_width: NonNeg = Field(0, description="Secondary: skip narrower objects.")
    input_object_min_height: NonNeg = Field(0, description="Secondary: skip lower objects.")
    input_object_max_width: NonNeg = Field(
        0, description="Secondary: skip wider objects; 0 = no limit."
    )
    input_object_max_height: NonNeg = Field(
        0, description="Secondary: skip taller objects; 0 = no limit."
    )
    secondary_reinfer_interval: NonNeg | None = Field(
        None, description="Secondary: frames before a tracked object is re-inferred."
    )
    output_tensor_meta: bool = Field(False, description="Attach raw output tensors as metadata.")
    input_tensor_from_meta: bool = Field(
        False, description="Take preprocessed tensors from metadata."
    )
    workspace_size: NonNeg | None = Field(None, description="TensorRT build workspace (MB).")
    custom_lib_path: Path | None = Field(None, description="Library with custom parsers.")
    parse_bbox_func_name: str | None = Field(None, description="Custom box parser function.")
    parse_classifier_func_name: str | None = Field(
        None, description="Custom classifier parser function."
    )
    engine_create_func_name: str | None = Field(None, description="Custom engine builder function.")
    custom_network_config: Path | None = Field(None, description="Config file of a custom network.")
    parse_func: NonNeg | None = Field(None, description="Legacy output parser selector.")
    enable_dla: bool = Field(False, description="Run on a DLA core (Jetson).")
    use_dla_core: NonNeg = Field(0, description="Which DLA core.")
    force_implicit_batch_dim: bool = Field(False, description="Build with implicit batch.")
    scaling_filter: int = Field(
        0, ge=0, le=6, description="Scaling interpolation filter (NvBufSurfTransform_Inter 0..6)."
    )
    scaling_compute_hw: NonNeg = Field(0, description="Scaling hardware.")
    network_input_order: int = Field(0, ge=0, le=1, description="Input layout: 0 NCHW, 1 NHWC.")
    tensor_meta_pool_size: int | None = Field(
        None, ge=1, description="Buffers for output tensor metadata."
    )

    @model_validator(mode="after")
    def _legacy_is_classifier(self) -> InferProperty:
        # DeepStream maps is-classifier onto network-type only when network-type is absent.
        if self.is_classifier is not None and "network_type" not in self.model_fields_set:
            self.network_type = (
                NetworkType.CLASSIFIER if self.is_classifier else NetworkType.DETECTOR
            )
        return self


class ClassAttrs(Strict):
    """[class-attrs-all] / [class-attrs-N]: detection post-processing for one class."""

    # Scores are probabilities: a threshold above 1 would drop every box without a word.
    pre_cluster_threshold: float = Field(
        0.2, ge=0, le=1, description="Drop boxes scoring below this before clustering (0..1)."
    )
    post_cluster_threshold: float = Field(
        0.0, ge=0, le=1, description="Drop boxes scoring below this after clustering (0..1)."
    )
    nms_iou_threshold: float = Field(0.3, ge=0, le=1, description="NMS overlap threshold.")
    topk: int = Field(-1, ge=-1, description="Keep the k best boxes after NMS; -1 keeps all.")
    eps: float = Field(0.0, ge=0, description="DBSCAN neighbourhood radius.")
    min_boxes: int = Field(0, ge=0, json_schema_extra=ds("minBoxes"), description="DBSCAN.")
    group_threshold: int = Field(0, ge=0, description="groupRectangles minimum group size.")
    dbscan_min_score: float = Field(0.0, ge=0, description="DBSCAN minimum cluster score.")
    detected_min_w: NonNeg = Field(0, description="Drop boxes narrower than this (pixels).")
    detected_min_h: NonNeg = Field(0, description="Drop boxes lower than this (pixels).")
    detected_max_w: NonNeg = Field(0, description="Drop boxes wider than this; 0 = no limit.")
    detected_max_h: NonNeg = Field(0, description="Drop boxes taller than this; 0 = no limit.")
    roi_top_offset: NonNeg = Field(0, description="Ignore boxes in this many rows at the top.")
    roi_bottom_offset: NonNeg = Field(
        0, description="Ignore boxes in this many rows at the bottom."
    )
    border_color: Color | None = Field(None, description="Box colour of this class.")
    bg_color: Color | None = Field(None, description="Box fill colour of this class.")

    @model_validator(mode="after")
    def _min_below_max(self) -> ClassAttrs:
        problems = Problems()
        for axis in ("w", "h"):
            low, high = getattr(self, f"detected_min_{axis}"), getattr(self, f"detected_max_{axis}")
            if high and low > high:
                problems.add(
                    f"detected_min_{axis}",
                    f"detected-min-{axis} ({low}) is above detected-max-{axis} ({high})",
                )
        problems.raise_if_any()
        return self


class NvInferConfig(Strict):
    """A parsed nvinfer config: properties, per-class attributes (merged) and the labels."""

    property: InferProperty = Field(description="[property]")
    class_attrs_all: ClassAttrs = Field(
        default_factory=ClassAttrs, description="[class-attrs-all] with defaults filled in."
    )
    class_attrs: dict[int, ClassAttrs] = Field(
        default_factory=dict,
        description="Effective attributes of every class: [class-attrs-N] over [class-attrs-all].",
    )
    labels: list[str] = Field(
        default_factory=list, description="Class names (detectors) from the labels file."
    )
    classifier_labels: list[list[str]] = Field(
        default_factory=list, description="Classifiers: one ';'-list of labels per output."
    )

    @model_validator(mode="before")
    @classmethod
    def _merge_class_attrs(cls, data: Any) -> Any:
        """Every class gets [class-attrs-all] with its own [class-attrs-N] keys on top."""
        if not isinstance(data, dict):
            return data
        base = data.get("class_attrs_all") or {}
        per_class = data.get("class_attrs") or {}
        prop = data.get("property")
        count = prop.get("num_detected_classes") if isinstance(prop, dict) else None
        if isinstance(prop, InferProperty):
            count = prop.num_detected_classes
        if not isinstance(base, dict) or not isinstance(per_class, dict):
            return data
        own_attrs = {int(k) if str(k).isdigit() else k: v for k, v in per_class.items()}
        indices = set(own_attrs)
        if isinstance(count, int | str) and str(count).isdigit():
            indices |= set(range(int(count)))
        merged: dict[Any, Any] = {}
        for index in sorted(indices, key=lambda k: (not isinstance(k, int), str(k).zfill(9))):
            own = own_attrs.get(index, {})
            merged[index] = {**base, **own} if isinstance(own, dict) else own
        return {**data, "class_attrs": merged}

    @model_validator(mode="after")
    def _cross_check(self) -> NvInferConfig:
        problems = Problems()
        prop = self.property
        count = prop.num_detected_classes
        detector = prop.network_type in (NetworkType.DETECTOR, NetworkType.INSTANCE_SEGMENTATION)
        if detector and count is None:
            problems.add("property.num_detected_classes", "a detector needs num-detected-classes")
        if count is not None:
            for index in sorted(self.class_attrs):
                if index >= count:
                    problems.add(
                        f"class_attrs.{index}",
                        f"[class-attrs-{index}] names class {index} but num-detected-classes is "
                        f"{count} (valid: 0..{count - 1})",
                    )
        implicit = prop.tlt_encoded_model or prop.uff_file or prop.model_file
        if prop.network_mode is NetworkMode.INT8 and implicit and not prop.int8_calib_file:
            # Only explicitly quantized (Q/DQ) ONNX models build an INT8 engine without a cache.
            problems.add(
                "property.network_mode",
                "network-mode=1 (INT8) needs int8-calib-file to build the engine from a "
                "TAO/UFF/Caffe model",
            )
        sources = ("onnx_file", "tlt_encoded_model", "uff_file", "model_file", "model_engine_file")
        if not any(getattr(prop, name) for name in sources) and not prop.custom_network_config:
            problems.add(
                "property",
                "no model given: set onnx-file, tlt-encoded-model, uff-file, model-file "
                "or model-engine-file",
            )
        if prop.tlt_encoded_model and prop.tlt_model_key is None:
            problems.add("property.tlt_model_key", "tlt-encoded-model needs tlt-model-key")
        problems.raise_if_any()
        return self

    def class_name(self, class_id: int) -> str:
        return self.labels[class_id] if class_id < len(self.labels) else str(class_id)


def nvinfer_warnings(config: NvInferConfig) -> list[tuple[str, str]]:
    """Settings DeepStream runs but that are probably unintended, or that Heron cannot run
    the way DeepStream would, as (field path, message)."""
    found = labels_warnings(config)
    engine = config.property.model_engine_file
    if engine is not None and not has_model_besides_engine(config.property):
        found.append(("property.model_engine_file", engine_not_run_message(engine)))
    found += [(f"property.{key}", message) for key, message in _no_effect(config.property)]
    return found


_CUSTOM_PARSER = (
    "Heron decodes DetectNet_v2's grids itself and loads no custom library (a model whose "
    "outputs need a custom parser is refused when the inference service loads it)"
)
_SECONDARY_ONLY = "it applies to secondary GIEs, which Heron does not run"
# [property] keys DeepStream applies that have no counterpart in Heron: set, each is a warning
# (nothing parsed is dropped without a word); the keys that would change results are errors
# (nvinfer_errors).
NO_EFFECT: dict[str, str] = {
    "gpu_id": "the inference service's backend settings choose the device (backend.kind: "
    "torch, device: cuda:N), not the nvinfer config",
    "enable_dla": "Heron runs no DLA (Jetson) engine",
    "use_dla_core": "Heron runs no DLA (Jetson) engine",
    "workspace_size": "Heron builds no TensorRT engine from the nvinfer config (`heron "
    "build-engine` has its own options)",
    "force_implicit_batch_dim": "Heron builds no TensorRT engine from the nvinfer config",
    "scaling_compute_hw": "Heron scales frames with OpenCV on the CPU",
    "output_tensor_meta": "Heron attaches no raw output tensors to the metadata",
    "tensor_meta_pool_size": "Heron attaches no raw output tensors to the metadata",
    "custom_lib_path": _CUSTOM_PARSER,
    "parse_bbox_func_name": _CUSTOM_PARSER,
    "parse_classifier_func_name": _CUSTOM_PARSER,
    "engine_create_func_name": _CUSTOM_PARSER,
    "parse_func": _CUSTOM_PARSER,
    "classifier_threshold": "Heron runs detectors only, no classifier",
    "classifier_type": "Heron runs detectors only, no classifier",
    "classifier_async_mode": "Heron runs detectors only, no classifier",
    "segmentation_threshold": "Heron runs detectors only, no segmentation model",
    "secondary_reinfer_interval": _SECONDARY_ONLY,
    "input_object_min_width": _SECONDARY_ONLY,
    "input_object_min_height": _SECONDARY_ONLY,
    "input_object_max_width": _SECONDARY_ONLY,
    "input_object_max_height": _SECONDARY_ONLY,
    "operate_on_gie_id": _SECONDARY_ONLY,
    "operate_on_class_ids": _SECONDARY_ONLY,
}


def _no_effect(prop: InferProperty) -> list[tuple[str, str]]:
    found = []
    for key, why in NO_EFFECT.items():
        value = getattr(prop, key)
        if key in prop.model_fields_set and value != InferProperty.model_fields[key].default:
            name = key.replace("_", "-")
            found.append((key, f"{name} has no effect in Heron: {why}; it is ignored"))
    return found


def nvinfer_errors(config: NvInferConfig) -> list[tuple[str, str]]:
    """Settings DeepStream applies that Heron cannot, where ignoring them would change what
    the model sees: refused, as (field path, message)."""
    prop = config.property
    found: list[tuple[str, str]] = []
    if prop.mean_file is not None:
        found.append(
            (
                "property.mean_file",
                "mean-file is not supported: Heron subtracts per-channel means only; give them "
                "as offsets=R;G;B instead of a mean image",
            )
        )
    if prop.network_input_order != 0:
        found.append(
            (
                "property.network_input_order",
                "network-input-order=1 (NHWC) is not supported: Heron feeds the network NCHW "
                "tensors (network-input-order=0)",
            )
        )
    return found


# Words every "cannot run this engine" finding holds: the inference service looks for them to
# say where the engine was set when ONNX Runtime has no model to run.
ENGINE_NOT_RUN = "is a TensorRT engine, which Heron cannot run"
MODEL_SOURCES = (
    "onnx_file",
    "tlt_encoded_model",
    "uff_file",
    "model_file",
    "custom_network_config",
)


def has_model_besides_engine(prop: InferProperty) -> bool:
    """A model nvinfer would build its engine from. Heron runs only an ONNX one; a config with
    an .etlt/UFF/Caffe model fails for that model, not for the engine beside it."""
    return any(getattr(prop, name) for name in MODEL_SOURCES)


def engine_not_run_message(engine: Path, config_file: Path | None = None) -> str:
    """A TensorRT engine and no ONNX model: what Heron cannot do and what to do instead."""
    where = f"{str(config_file)!r}" if config_file is not None else "the nvinfer config"
    return (
        f"model-engine-file {str(engine)!r} {ENGINE_NOT_RUN} (it needs TensorRT on an NVIDIA "
        f"GPU) and no onnx-file is given: export the model to ONNX and set onnx-file= in {where} "
        "(nvinfer builds its engine from that file too), or set the inference service's "
        "backend.model_file, or serve the model from Triton (backend.kind: triton)"
    )


def labels_warnings(config: NvInferConfig) -> list[tuple[str, str]]:
    """A labels file whose count differs from num-detected-classes, as (field path, message).

    nvinfer refuses neither case: it looks a label up by class id and leaves the label empty
    past the end of the file. NVIDIA's own face-mask sample ships three labels (mask, no-mask,
    default) for two classes.
    """
    prop = config.property
    count, labels = prop.num_detected_classes, config.labels
    detector = prop.network_type in (NetworkType.DETECTOR, NetworkType.INSTANCE_SEGMENTATION)
    if not detector or count is None or not labels or len(labels) == count:
        return []
    plural = "" if len(labels) == 1 else "s"
    found = (
        f"the labels file has {len(labels)} label{plural} {labels} but num-detected-classes "
        f"is {count}"
    )
    if len(labels) > count:
        message = f"{found}: {labels[count:]} name no class of the model and are never used"
    elif count - len(labels) == 1:
        message = f"{found}: class {count - 1} gets no label (DeepStream leaves it empty)"
    else:
        message = (
            f"{found}: classes {len(labels)}..{count - 1} get no label (DeepStream leaves it empty)"
        )
    return [("labels", message)]
