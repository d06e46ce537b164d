"""An RTSP server inside the process: frames pushed as numpy arrays, H.264 out to any viewer.

GStreamer's RTSP server runs its GLib main loop in a thread of its own. One shared media
factory means all viewers watch one encoder. The encoder pipeline is

    appsrc (live, timestamped on arrival) ! leaky queue ! x264enc (zerolatency) ! rtph264pay

so `push()` never waits for a viewer: with none connected the frame is counted and dropped
before conversion; when the encoder falls behind, the queue drops the oldest frame. A viewer
that starts PLAYing makes the encoder emit a keyframe at once (and twice more shortly after);
else it would see nothing until the next scheduled one (up to `key_int_max` frames later).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from heron.overlay.sinks.frames import bgr_to_i420, check_bgr
from heron.overlay.sinks.gst import GstModules, load_gstreamer, require_elements
from heron.overlay.sinks.rtsp_metrics import RtspMetrics
from heron.overlay.sinks.rtsp_settings import (
    ENCODERS,
    PAYLOADERS,
    RtspCodec,
    RtspSettings,
)

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
# Besides the keyframe at PLAY, more shortly after: FFmpeg clients opened with fflags=nobuffer
# (PyAV in the ingest service, NOTES.md) throw away the packets they probe, and with them the
# first keyframe; they would otherwise show nothing until the next scheduled one.
KEYFRAMES_AFTER_PLAY_S = (0.25, 1.0)


class PortInUseError(OSError):
    """Another socket already listens on the RTSP port."""


def launch_description(settings: RtspSettings) -> str:
    """The media factory's gst-launch pipeline for these settings (values are validated)."""
    from fractions import Fraction

    rate = Fraction(settings.fps).limit_denominator(1001)
    caps = (
        f"video/x-raw,format=I420,width={settings.width},height={settings.height},"
        f"framerate={rate.numerator}/{rate.denominator}"
    )
    depth = settings.queue_frames
    # x264's zerolatency tune splits each frame into one slice per thread; FFmpeg's RTSP client
    # (PyAV, the ingest service) then hands out frames with slices missing. Frame threads instead.
    threads = f"threads={settings.encoder_threads}"
    if settings.codec is RtspCodec.H264:
        threads += " sliced-threads=false"
    else:
        threads = ""  # x265enc has no thread property; its pools follow the CPU count
    if settings.codec is RtspCodec.H264:
        encoded = f"video/x-h264,profile={settings.profile.value}"
    else:
        encoded = "video/x-h265"
    return (
        f"( appsrc name=src is-live=true do-timestamp=true format=time block=false "
        f"max-buffers={depth} leaky-type=downstream caps={caps} "
        f"! queue name=queue leaky=downstream max-size-buffers={depth} max-size-bytes=0 "
        f"max-size-time=0 "
        f"! {ENCODERS[settings.codec]} name=enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={settings.key_int_max} bitrate={settings.bitrate_kbps} {threads} "
        f"! {encoded} ! {PAYLOADERS[settings.codec]} name=pay0 pt=96 config-interval=-1 )"
    )


class _Pipeline:
    """The elements of the media now prepared (none while no viewer is connected)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.media: Any = None
        self.appsrc: Any = None
        self.encoder: Any = None

    def set(self, media: Any, appsrc: Any, encoder: Any) -> None:
        with self.lock:
            self.media, self.appsrc, self.encoder = media, appsrc, encoder

    def clear(self, media: Any = None) -> None:
        """Forget the media; with `media`, only if it is still the current one."""
        with self.lock:
            if media is None or media is self.media:
                self.media = self.appsrc = self.encoder = None


class RtspServer:
    """rtsp://address:port/mount serving the frames given to `push()`.

    >>> with RtspServer(8554, width=960, height=544, fps=30) as server:  # doctest: +SKIP
    ...     server.push(frame)  # (544, 960, 3) uint8 BGR
    """

    def __init__(
        self,
        port: int = 8554,
        mount: str = "/ds-test",
        *,
        width: int,
        height: int,
        fps: float = 30.0,
        bitrate_kbps: int = 4000,
        address: str = "127.0.0.1",
        codec: RtspCodec = RtspCodec.H264,
        metrics: RtspMetrics | None = None,
    ) -> None:
        settings = RtspSettings(
            port=port,
            mount=mount,
            width=width,
            height=height,
            fps=fps,
            bitrate_kbps=bitrate_kbps,
            address=address,
            codec=codec,
            key_int_max=max(1, round(fps)),
        )
        self._init(settings, metrics)

    @classmethod
    def from_settings(
        cls, settings: RtspSettings, metrics: RtspMetrics | None = None
    ) -> RtspServer:
        server = cls.__new__(cls)
        server._init(settings, metrics)
        return server

    def _init(self, settings: RtspSettings, metrics: RtspMetrics | None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else RtspMetrics()
        labels = (str(settings.port), settings.mount)
        self._pushed = self.metrics.frames_pushed.labels(*labels)
        self._encoded = self.metrics.frames_encoded.labels(*labels)
        self._no_viewer = self.metrics.frames_dropped.labels(*labels, "no_viewer")
        self._behind = self.metrics.frames_dropped.labels(*labels, "encoder_behind")
        self._client_gauge = self.metrics.clients.labels(*labels)
        self._pipeline = _Pipeline()
        self._clients: set[int] = set()
        self._counts = {"pushed": 0, "dropped": 0, "encoded": 0}
        self._count_lock = threading.Lock()
        self._gst: GstModules | None = None
        self._loop: Any = None
        self._context: Any = None
        self._server: Any = None
        self._source: Any = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Listen on the port and serve; raises PortInUseError or GStreamerMissingError."""
        if self._thread is not None:
            raise RuntimeError(f"RTSP server {self.url} is already started")
        gst = load_gstreamer()
        require_elements(
            "appsrc", "queue", ENCODERS[self.settings.codec], PAYLOADERS[self.settings.codec]
        )
        context = gst.GLib.MainContext.new()
        server = gst.GstRtspServer.RTSPServer.new()
        server.set_address(self.settings.address)
        server.set_service(str(self.settings.port))
        server.get_mount_points().add_factory(self.settings.mount, self._factory(gst))
        server.connect("client-connected", self._on_client)
        source = self._listen(gst, server)
        source.attach(context)
        self._gst, self._context, self._server, self._source = gst, context, server, source
        self._loop = gst.GLib.MainLoop.new(context, False)
        self._thread = threading.Thread(
            target=self._loop.run, name=f"rtsp-{self.settings.port}", daemon=True
        )
        self._thread.start()
        log.info("serving %s (%dx%d)", self.url, self.settings.width, self.settings.height)

    def _listen(self, gst: GstModules, server: Any) -> Any:
        where = f"{self.settings.address}:{self.settings.port}"
        try:
            return server.create_source(None)
        except gst.GLib.Error as e:
            if e.matches(gst.Gio.io_error_quark(), gst.Gio.IOErrorEnum.ADDRESS_IN_USE):
                raise PortInUseError(
                    f"RTSP port {where} is already in use: stop the other server or choose "
                    f"another rtsp-port"
                ) from None
            raise OSError(f"cannot listen for RTSP on {where}: {e.message}") from None

    def stop(self) -> None:
        """End the stream for every viewer (they see end of stream), free the port."""
        if self._thread is None or self._gst is None:
            return
        done = threading.Event()

        def teardown(*_args: object) -> bool:
            self._teardown()
            done.set()
            return False

        idle = self._gst.GLib.idle_source_new()
        idle.set_callback(teardown)
        idle.attach(self._context)
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning(
                "RTSP server %s: main loop did not stop in %.0f s", self.url, STOP_TIMEOUT_S
            )
        self._thread = None
        self._loop = self._context = self._server = self._source = None
        self._pipeline.clear()
        log.info("stopped %s", self.url)

    def _teardown(self) -> None:
        """In the loop thread: EOS to the encoder, close every client and session, unlisten."""
        gst = self._gst
        if gst is None:  # stop() schedules this only after start(); nothing to tear down
            return
        remove = gst.GstRtspServer.RTSPFilterResult.REMOVE
        with self._pipeline.lock:
            appsrc = self._pipeline.appsrc
        if appsrc is not None:
            appsrc.end_of_stream()
        self._server.client_filter(lambda _server, _client: remove)
        self._server.get_session_pool().filter(lambda _pool, _session: remove)
        self._server.get_mount_points().remove_factory(self.settings.mount)
        self._source.destroy()
        self._loop.quit()

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- frames ----------------------------------------------------------------------------

    def push(self, bgr: npt.NDArray[np.uint8]) -> bool:
        """Hand one BGR frame to the encoder; False if dropped (no viewer). Never blocks."""
        frame = check_bgr(bgr, self.settings.width, self.settings.height)
        if self._thread is None or self._gst is None:
            raise RuntimeError(f"push() on RTSP server {self.url} before start() or after stop()")
        with self._pipeline.lock:
            appsrc = self._pipeline.appsrc
        if appsrc is None:
            self._drop(self._no_viewer)
            return False
        if appsrc.get_current_level_buffers() >= self.settings.queue_frames:
            self._drop(self._behind)  # appsrc leaks its oldest frame to make room
        data = bgr_to_i420(frame).tobytes()
        # A buffer of GStreamer's own, filled by copy: Buffer.new_wrapped(bytes) does not keep
        # the Python bytes alive, and the encoder then reads freed memory.
        buffer = self._gst.Gst.Buffer.new_allocate(None, len(data), None)
        buffer.fill(0, data)
        appsrc.push_buffer(buffer)
        self._pushed.inc()
        with self._count_lock:
            self._counts["pushed"] += 1
        return True

    def _drop(self, counter: Any) -> None:
        counter.inc()
        with self._count_lock:  # also called from GStreamer's streaming thread
            self._counts["dropped"] += 1

    @property
    def frames_pushed(self) -> int:
        """Frames handed to the encoder pipeline since this object was made."""
        return self._counts["pushed"]

    @property
    def frames_encoded(self) -> int:
        """Frames the encoder has put out (all viewers share them)."""
        return self._counts["encoded"]

    @property
    def frames_dropped(self) -> int:
        """Frames accepted by push() that were not encoded (no viewer, encoder behind)."""
        return self._counts["dropped"]

    @property
    def clients(self) -> int:
        """RTSP connections open now."""
        return len(self._clients)

    # -- GStreamer callbacks (loop or streaming threads) -----------------------------------

    def _factory(self, gst: GstModules) -> Any:
        factory = gst.GstRtspServer.RTSPMediaFactory.new()
        factory.set_launch(launch_description(self.settings))
        factory.set_shared(True)
        factory.connect("media-configure", self._on_media_configure)
        return factory

    def _on_media_configure(self, _factory: Any, media: Any) -> None:
        element = media.get_element()
        appsrc = element.get_by_name("src")
        element.get_by_name("queue").connect("overrun", self._on_overrun)
        encoder = element.get_by_name("enc")
        probe = load_gstreamer().Gst.PadProbeType.BUFFER
        encoder.get_static_pad("src").add_probe(probe, self._on_encoded)
        self._pipeline.set(media, appsrc, encoder)
        media.connect("unprepared", self._pipeline.clear)
        log.debug("RTSP %s: encoder pipeline prepared", self.url)

    def _on_overrun(self, _queue: Any) -> None:
        self._drop(self._behind)

    def _on_encoded(self, _pad: Any, _info: Any) -> Any:
        self._encoded.inc()
        with self._count_lock:
            self._counts["encoded"] += 1
        return load_gstreamer().Gst.PadProbeReturn.OK

    def _on_client(self, _server: Any, client: Any) -> None:
        key = id(client)
        self._clients.add(key)
        self._client_gauge.set(len(self._clients))
        client.connect("play-request", self._on_play)
        client.connect("closed", lambda _client: self._on_closed(key))

    def _on_closed(self, key: int) -> None:
        self._clients.discard(key)
        self._client_gauge.set(len(self._clients))

    def _on_play(self, _client: Any, _context: Any) -> None:
        """A viewer starts: keyframes now and a little later (see KEYFRAMES_AFTER_PLAY_S)."""
        gst = self._gst
        if gst is None or self._context is None:
            return
        self._force_keyframe()
        for delay in KEYFRAMES_AFTER_PLAY_S:
            timer = gst.GLib.timeout_source_new(int(delay * 1000))
            timer.set_callback(lambda *_args: self._force_keyframe())
            timer.attach(self._context)

    def _force_keyframe(self) -> bool:
        """Ask the encoder for a keyframe with SPS/PPS on its next frame; False ends a timer."""
        gst = self._gst
        with self._pipeline.lock:
            encoder = self._pipeline.encoder
        if gst is not None and encoder is not None:
            event = gst.GstVideo.video_event_new_upstream_force_key_unit(
                gst.Gst.CLOCK_TIME_NONE, True, 0
            )
            encoder.get_static_pad("src").send_event(event)
        return False
