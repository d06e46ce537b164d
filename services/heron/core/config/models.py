"""Typed pipeline configuration: what a deepstream-app config describes, normalized.

Field names are DeepStream's keys in snake_case; group names likewise (`[tiled-display]` →
`tiled_display`, `[source0]` → `sources[0]`, `[secondary-gie1]` → `secondary_gies[1]`). Source
and sink kinds are discriminated unions on `type`, which takes DeepStream's integer code or its
name (`type: rtsp` = `type=4`). Defaults follow deepstream-app's parser.
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

from heron.core.config.nvinfer_models import MAX_BATCH_SIZE, NetworkType, NvInferConfig
from heron.core.config.problems import Problems
from heron.core.config.sinks import Sink
from heron.core.config.sources import Source
from heron.core.config.values import (
    MAX_FRAME_SIDE,
    Color,
    FrameSide,
    IntList,
    NonNeg,
    Port,
    Strict,
    coded,
)

# --- application, tests ---------------------------------------------------------------------


class Application(Strict):
    enable_perf_measurement: bool = Field(False, description="Print/export FPS per stream.")
    perf_measurement_interval_sec: int = Field(5, ge=1, description="Seconds between reports.")
    gie_kitti_output_dir: Path | None = Field(
        None, json_schema_extra={"output": True}, description="Write detections as KITTI."
    )
    kitti_track_output_dir: Path | None = Field(
        None, json_schema_extra={"output": True}, description="Write tracks as KITTI."
    )


class Tests(Strict):
    file_loop: bool = Field(False, description="Restart file sources at end of stream.")
    pipeline_recreate_sec: NonNeg = Field(0, description="Rebuild the pipeline every N s (tests).")


# --- streammux, inference, tracker ------------------------------------------------------------


class Streammux(Strict):
    gpu_id: NonNeg = Field(0, description="GPU to run on.")
    live_source: bool = Field(False, description="Sources are live: timestamp on arrival.")
    batch_size: int | None = Field(
        None, ge=1, description="Frames per batch; unset = number of streams."
    )
    batched_push_timeout: int = Field(
        -1, ge=-1, description="Push a partial batch after N µs; -1 waits for a full one."
    )
    width: FrameSide = Field(1920, description="Frames are scaled to this width.")
    height: FrameSide = Field(1080, description="Frames are scaled to this height.")
    enable_padding: bool = Field(False, description="Keep aspect ratio with black bars.")
    buffer_pool_size: int = Field(4, ge=1, description="Output buffers in the pool.")
    nvbuf_memory_type: int = Field(0, ge=0, le=4, description="NvBufSurface memory type.")
    attach_sys_ts_as_ntp: bool = Field(
        True, description="Stamp frames with the system clock as NTP time."
    )
    config_file: Path | None = Field(None, description="New nvstreammux config file.")
    sync_inputs: bool = Field(False, description="Batch frames by timestamp across sources.")
    max_latency: NonNeg = Field(0, description="With sync-inputs: most a frame may wait (ns).")
    frame_num_reset_on_eos: bool = Field(
        False, description="Restart frame numbers when a source ends."
    )


class PluginType(StrEnum):
    NVINFER = "nvinfer"
    NVINFERSERVER = "nvinferserver"


PLUGIN_TYPES = {0: PluginType.NVINFER, 1: PluginType.NVINFERSERVER}


class Gie(Strict):
    """[primary-gie] / [secondary-gieN]; `nvinfer` is the parsed `config-file`."""

    enable: bool = Field(False, description="Run this inference engine.")
    gpu_id: NonNeg = Field(0, description="GPU to run on.")
    plugin_type: Annotated[PluginType, BeforeValidator(coded(PluginType, PLUGIN_TYPES))] = Field(
        PluginType.NVINFER, description="0 nvinfer (TensorRT), 1 nvinferserver (Triton)."
    )
    batch_size: int | None = Field(
        None, ge=1, le=MAX_BATCH_SIZE, description="Overrides the nvinfer batch-size."
    )
    interval: NonNeg | None = Field(None, description="Overrides the nvinfer interval.")
    gie_unique_id: int | None = Field(None, ge=1, description="Overrides the nvinfer id.")
    operate_on_gie_id: int | None = Field(None, ge=1, description="Secondary: parent engine id.")
    operate_on_class_ids: IntList = Field(
        default_factory=list, description="Secondary: only objects of these classes."
    )
    model_engine_file: Path | None = Field(
        None, description="Overrides the nvinfer model-engine-file."
    )
    labelfile_path: Path | None = Field(None, description="Overrides the nvinfer labelfile-path.")
    labels: list[str] = Field(
        default_factory=list,
        description="The lines of the labelfile-path file, read when the config is loaded; "
        "they override the nvinfer labels.",
    )
    config_file: Path | None = Field(None, description="The nvinfer config file.")
    input_tensor_meta: bool = Field(
        False, description="Take preprocessed tensors from upstream metadata."
    )
    infer_raw_output_dir: Path | None = Field(
        None,
        json_schema_extra={"output": True},
        description="Dump raw output tensors here (debugging).",
    )
    nvbuf_memory_type: int = Field(
        0, ge=0, le=4, description="NvBufSurface memory type (0 default .. 4 surface array)."
    )
    bbox_border_color: Color | None = Field(None, description="Box colour of every class.")
    bbox_border_colors: dict[NonNeg, Color] = Field(
        default_factory=dict, description="bbox-border-colorN: box colour of class N."
    )
    bbox_bg_color: Color | None = Field(None, description="Box fill colour of every class.")
    bbox_bg_colors: dict[NonNeg, Color] = Field(
        default_factory=dict, description="bbox-bg-colorN: box fill colour of class N."
    )
    nvinfer: NvInferConfig | None = Field(None, description="The parsed config-file.")

    @model_validator(mode="after")
    def _needs_config(self) -> Gie:
        problems = Problems()
        if self.enable and self.config_file is None and self.nvinfer is None:
            problems.add("config_file", "an enabled inference group needs config-file")
        classes = self.nvinfer.property.num_detected_classes if self.nvinfer else None
        if classes is not None and self.nvinfer and self._is_detector():
            for table in ("bbox_border_colors", "bbox_bg_colors"):
                for index in getattr(self, table):
                    if index >= classes:
                        problems.add(
                            f"{table}.{index}",
                            f"colour given for class {index} but the model has {classes} classes",
                        )
        problems.raise_if_any()
        return self

    def _is_detector(self) -> bool:
        return bool(self.nvinfer and self.nvinfer.property.network_type is NetworkType.DETECTOR)

    @property
    def unique_id(self) -> int:
        """The id its metadata carries (`effective_nvinfer`'s; without a config read, this
        group's gie-unique-id or nvinfer's default 1)."""
        # Imported here: heron.core.config.gie imports this module.
        from heron.core.config.gie import effective_nvinfer

        if self.nvinfer is not None:
            return effective_nvinfer(self).property.gie_unique_id
        return self.gie_unique_id if self.gie_unique_id is not None else 1


class Tracker(Strict):
    enable: bool = Field(False, description="Track objects across frames.")
    gpu_id: NonNeg = Field(0, description="GPU to run on.")
    tracker_width: int = Field(
        640, ge=32, le=MAX_FRAME_SIDE, description="Frame width the tracker works at."
    )
    tracker_height: int = Field(
        384, ge=32, le=MAX_FRAME_SIDE, description="Frame height the tracker works at."
    )
    # Heron reads the library's name only: it picks one of its own trackers by it
    # (heron.tracker.factory), and Heron's own names (libheron_*.so) are files nowhere.
    ll_lib_file: Path | None = Field(
        None,
        json_schema_extra={"library": True},
        description="Low-level tracker library (.so); only its name is read.",
    )
    ll_config_file: Path | None = Field(None, description="Low-level tracker config (YAML).")
    enable_batch_process: bool = Field(
        True, description="Track all streams of a batch in one call."
    )
    enable_past_frame: bool = Field(
        False, description="Report past-frame data of the low-level tracker."
    )
    display_tracking_id: bool = Field(True, description="Show track ids on the OSD.")
    tracking_id_reset_mode: int = Field(
        0, ge=0, le=3, description="When ids restart: 0 never .. 3 on stream reset and EOS."
    )
    tracking_surface_type: NonNeg = Field(0, description="Surface type the tracker works on.")
    tracker_surface_type: NonNeg | None = Field(
        None, description="Older spelling of tracking-surface-type."
    )

    @model_validator(mode="after")
    def _needs_library(self) -> Tracker:
        if self.enable and self.ll_lib_file is None:
            problems = Problems()
            problems.add("ll_lib_file", "an enabled tracker needs ll-lib-file")
            problems.raise_if_any()
        return self


# --- display ----------------------------------------------------------------------------------


class TiledDisplay(Strict):
    enable: bool = Field(False, description="Composite all streams into one frame.")
    gpu_id: NonNeg = Field(0, description="GPU to run on.")
    rows: int = Field(1, ge=1, description="Tile rows.")
    columns: int = Field(1, ge=1, description="Tile columns.")
    width: FrameSide = Field(1280, description="Width of the composited frame.")
    height: FrameSide = Field(720, description="Height of the composited frame.")
    nvbuf_memory_type: int = Field(0, ge=0, le=4, description="NvBufSurface memory type.")


class OsdMode(StrEnum):
    CPU = "cpu"
    GPU = "gpu"
    HW = "hw"


OSD_MODES = {0: OsdMode.CPU, 1: OsdMode.GPU, 2: OsdMode.HW}


class Osd(Strict):
    enable: bool = Field(False, description="Draw boxes and labels.")
    gpu_id: NonNeg = Field(0, description="GPU to run on.")
    process_mode: Annotated[OsdMode, BeforeValidator(coded(OsdMode, OSD_MODES))] = Field(
        OsdMode.GPU, description="0 CPU, 1 GPU, 2 hardware blending (Jetson)."
    )
    border_width: NonNeg = Field(1, description="Box line width in pixels.")
    border_color: Color | None = Field(None, description="Box colour when the GIE sets none.")
    text_size: int = Field(15, ge=1, description="Label font size.")
    text_color: Color = Field((1.0, 1.0, 1.0, 1.0), description="Label colour, RGBA.")
    text_bg_color: Color = Field((0.3, 0.3, 0.3, 1.0), description="Label background, RGBA.")
    font: str = Field("Serif", min_length=1, description="Label font name.")
    show_clock: bool = Field(False, description="Draw the wall clock.")
    clock_x_offset: NonNeg = Field(0, description="Clock position, pixels from the left.")
    clock_y_offset: NonNeg = Field(0, description="Clock position, pixels from the top.")
    clock_text_size: int = Field(12, ge=1, description="Clock font size.")
    clock_color: Color = Field((1.0, 0.0, 0.0, 0.0), description="Clock colour, RGBA.")
    display_text: bool = Field(True, description="Draw labels.")
    display_bbox: bool = Field(True, description="Draw boxes.")
    display_mask: bool = Field(False, description="Draw instance masks.")
    hw_blend_color_attr: str | None = Field(None, description="Hardware blending colours (Jetson).")
    nvbuf_memory_type: int = Field(0, ge=0, le=4, description="NvBufSurface memory type.")


class MessageBroker(Strict):
    """[message-broker]: connection settings of the broker adapter (Kafka, Redis, AMQP, MQTT)."""

    proto_lib: Path | None = Field(None, description="Protocol adapter library.")
    conn_str: str | None = Field(None, description="Connection string (host;port).")
    config_file: Path | None = Field(None, description="Adapter config file.")
    topic: str | None = Field(None, description="Topic (AMQP, MQTT).")
    hostname: str | None = Field(None, description="Broker host.")
    port: Port | None = Field(None, description="Broker port.")
    username: str | None = Field(None, description="User name.")
    password: SecretStr | None = Field(None, description="A secret: never printed.")
    partition_key: str | None = Field(None, description="Kafka partition key field.")
    share_connection: bool = Field(False, description="Share one connection.")
    proto_cfg: str | None = Field(None, description="Kafka librdkafka options.")
    producer_proto_cfg: str | None = Field(None, description="Kafka producer options.")
    consumer_proto_cfg: str | None = Field(None, description="Kafka consumer options.")
    consumer_group_id: str | None = Field(None, description="Kafka consumer group.")
    client_id: str | None = Field(None, description="MQTT client id.")
    exchange: str | None = Field(None, description="AMQP exchange.")
    amqp_framesize: int | None = Field(None, ge=4096, description="AMQP frame size (bytes).")
    amqp_heartbeat: NonNeg | None = Field(None, description="AMQP heartbeat (s).")
    streamsize: NonNeg | None = Field(None, description="Redis stream length cap.")
    payloadkey: str | None = Field(None, description="Redis field of the payload.")
    consumergroup: str | None = Field(None, description="Redis consumer group.")
    consumername: str | None = Field(None, description="Redis consumer name.")
    enable_tls: bool = Field(False, description="MQTT over TLS.")
    tls_cafile: Path | None = Field(None, description="TLS CA file.")
    tls_certfile: Path | None = Field(None, description="TLS certificate.")
    tls_keyfile: Path | None = Field(None, description="TLS private key.")
    keep_alive: NonNeg | None = Field(None, description="MQTT keep-alive (s).")
    loop_timeout: NonNeg | None = Field(None, description="MQTT loop timeout (ms).")


# --- the pipeline ---------------------------------------------------------------------------


class Pipeline(Strict):
    """A whole deepstream-app style pipeline."""

    application: Application = Field(default_factory=Application, description="[application]")
    sources: dict[NonNeg, Source] = Field(description="[sourceN] groups by N.")
    streammux: Streammux = Field(default_factory=Streammux, description="[streammux]")
    primary_gie: Gie | None = Field(None, description="[primary-gie]")
    secondary_gies: dict[NonNeg, Gie] = Field(
        default_factory=dict, description="[secondary-gieN] groups by N."
    )
    tracker: Tracker = Field(default_factory=Tracker, description="[tracker]")
    tiled_display: TiledDisplay = Field(default_factory=TiledDisplay, description="[tiled-display]")
    osd: Osd = Field(default_factory=Osd, description="[osd]")
    sinks: dict[NonNeg, Sink] = Field(description="[sinkN] groups by N.")
    message_broker: MessageBroker | None = Field(None, description="[message-broker]")
    tests: Tests = Field(default_factory=Tests, description="[tests]")

    @property
    def enabled_sources(self) -> dict[int, Any]:
        return {i: s for i, s in self.sources.items() if s.enable}

    @property
    def stream_count(self) -> int:
        return sum(getattr(s, "num_sources", 1) for s in self.enabled_sources.values())

    def source_ids(self) -> list[tuple[int, list[int]]]:
        """Each enabled [sourceN] group's N with the source ids of its streams, in
        deepstream-app's numbering: groups in N order, a multi-URI group opens `num-sources`
        streams, and `source-id` pins the first id of its group. The one home of this rule:
        ingest opens these streams and every stage admits only them."""
        groups: list[tuple[int, list[int]]] = []
        next_id = 0
        for index, source in sorted(self.enabled_sources.items()):
            first = source.source_id if source.source_id is not None else next_id
            copies = int(getattr(source, "num_sources", 1))
            groups.append((index, list(range(first, first + copies))))
            next_id = first + copies
        return groups

    @property
    def stream_ids(self) -> list[str]:
        return [stream_id_for(i) for _, ids in self.source_ids() for i in ids]

    @model_validator(mode="after")
    def _cross_check(self) -> Pipeline:
        problems = Problems()
        if not self.enabled_sources:
            problems.add("sources", "no source is enabled (set enable=1 in a [sourceN] group)")
        if not any(s.enable for s in self.sinks.values()):
            problems.add("sinks", "no sink is enabled (set enable=1 in a [sinkN] group)")
        gies = {"primary_gie": self.primary_gie} if self.primary_gie else {}
        gies.update({f"secondary_gies.{i}": g for i, g in self.secondary_gies.items()})
        owners: dict[int, str] = {}
        for at, gie in gies.items():
            if not gie.enable:
                continue
            if gie.unique_id in owners:
                problems.add(
                    f"{at}.gie_unique_id",
                    f"gie-unique-id {gie.unique_id} is used by {owners[gie.unique_id]} too",
                )
            owners.setdefault(gie.unique_id, at)
        for at, gie in gies.items():
            parent = gie.operate_on_gie_id
            if gie.enable and at != "primary_gie" and parent is not None and parent not in owners:
                problems.add(
                    f"{at}.operate_on_gie_id",
                    f"operate-on-gie-id {parent} names no enabled engine (ids: {sorted(owners)})",
                )
        for index, sink in self.sinks.items():
            if sink.enable and sink.link_to_demux and sink.source_id >= self.stream_count:
                problems.add(
                    f"sinks.{index}.source_id",
                    f"source-id {sink.source_id} but there are {self.stream_count} streams",
                )
        problems.raise_if_any()
        return self


def stream_id_for(source_id: int) -> str:
    """The stream id of source `source_id`, in stream names, metadata and metrics."""
    return f"source-{source_id}"


def pipeline_warnings(pipeline: Pipeline) -> list[tuple[str, str]]:
    """Legal but probably unintended settings, as (field path, message)."""
    found: list[tuple[str, str]] = []
    streams = pipeline.stream_count
    batch = pipeline.streammux.batch_size
    if batch is not None and streams and batch != streams:
        found.append(
            (
                "streammux.batch_size",
                f"batch-size {batch} differs from the {streams} enabled stream(s); DeepStream "
                "advises one slot per stream",
            )
        )
    tiler = pipeline.tiled_display
    if tiler.enable and tiler.rows * tiler.columns < streams:
        found.append(
            (
                "tiled_display.rows",
                f"a {tiler.rows}x{tiler.columns} tiler shows only {tiler.rows * tiler.columns} "
                f"of the {streams} streams",
            )
        )
    return found
