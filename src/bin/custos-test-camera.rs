//! `custos-test-camera`: a real RTSP camera for tests, benchmarks and demos, built on
//! GStreamer's RTSP server library. It serves a live test pattern encoded as H.264 or
//! H.265 (or, with `--replay`, a clip of it encoded once and served in a loop) and prints
//! `ready rtsp://…` on stdout once it accepts connections.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

#[derive(Parser)]
#[command(version, about = "Serve a live test pattern over RTSP, like an IP camera")]
struct Args {
    /// TCP port (0 picks a free one).
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Mount path of the stream.
    #[arg(long, default_value = "/stream")]
    path: String,
    /// h264 or h265.
    #[arg(long, default_value = "h264")]
    codec: String,
    /// Encoder bitrate in kbit/s.
    #[arg(long, default_value_t = 1000)]
    bitrate_kbps: u32,
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 360)]
    height: u32,
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// Frames between keyframes.
    #[arg(long, default_value_t = 50)]
    keyint: u32,
    /// videotestsrc pattern.
    #[arg(long, default_value = "ball")]
    pattern: String,
    /// Require RTSP digest authentication with this user (and --password), as most IP
    /// cameras do.
    #[arg(long, requires = "password")]
    user: Option<String>,
    #[arg(long, requires = "user")]
    password: Option<String>,
    /// Encode the pattern once (five keyframe intervals) and serve that clip in a loop,
    /// one picture per frame interval, stamped as it is sent: a camera that costs no
    /// encoder CPU, so benchmarks of many sessions measure the recorder, not the camera.
    #[arg(long)]
    replay: bool,
    /// Serve at most this many clients at once, as cameras with a session limit do
    /// (further SETUPs are answered 503 Service Unavailable).
    #[arg(long)]
    max_clients: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    gst::init().context("initialising GStreamer")?;
    let (encoder, pay) = match a.codec.as_str() {
        "h264" => ("x264enc", "rtph264pay"),
        "h265" => ("x265enc", "rtph265pay"),
        other => anyhow::bail!("--codec {other:?}: use h264 or h265"),
    };
    let raw = format!("video/x-raw,format=I420,width={},height={},framerate={}/1", a.width, a.height, a.fps);
    let enc = format!(
        "{encoder} tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={}",
        a.keyint, a.bitrate_kbps
    );
    let pay = format!("{pay} name=pay0 pt=96 config-interval=-1");
    let (launch, clip) = if a.replay {
        let frames = a.keyint * 5;
        let desc = format!("videotestsrc num-buffers={frames} pattern={} ! {raw} ! {enc}", a.pattern);
        let clip = Arc::new(pre_encode(&desc, a.fps)?);
        let caps = format!("video/x-{},stream-format=byte-stream,alignment=au", a.codec);
        (format!("( appsrc name=clip is-live=true do-timestamp=true format=time caps={caps} ! {pay} )"), Some(clip))
    } else {
        (format!("( videotestsrc is-live=true pattern={} ! {raw} ! {enc} ! {pay} )", a.pattern), None)
    };
    let server = rtsp::RTSPServer::new();
    if let Some(n) = a.max_clients {
        // One more for the camera's own warm-up client below.
        if let Some(pool) = server.session_pool() {
            pool.set_max_sessions(n + 1);
        }
    }
    server.set_address(&a.address);
    server.set_service(&a.port.to_string());
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&launch);
    // One encoder shared by every client, as a camera has.
    factory.set_shared(true);
    // Live, as a camera is: not seekable. Clients such as retina PLAY with `Range:
    // npt=0.000-`; videotestsrc would take that as a seek and restart every client's
    // timestamps, with a pause, whenever one joins.
    factory.connect_media_configure(move |_, media| {
        let Ok(bin) = media.element().downcast::<gst::Bin>() else { return };
        if let (Some(clip), Some(src)) = (&clip, bin.by_name("clip")) {
            feed_in_a_loop(src, clip.clone());
        }
        let Some(pay) = bin.by_name("pay0") else {
            return;
        };
        if let Some(pad) = pay.static_pad("src") {
            pad.add_probe(gst::PadProbeType::QUERY_UPSTREAM, |_, info| {
                if let Some(gst::PadProbeData::Query(q)) = info.data.as_mut() {
                    if let gst::QueryViewMut::Seeking(s) = q.view_mut() {
                        s.set(false, gst::ClockTime::ZERO, gst::ClockTime::NONE);
                        return gst::PadProbeReturn::Handled;
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
    });
    if let (Some(user), Some(password)) = (&a.user, &a.password) {
        let auth = rtsp::RTSPAuth::new();
        auth.set_supported_methods(rtsp::gst_rtsp::RTSPAuthMethod::Digest);
        let token = rtsp::RTSPToken::builder().field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer").build();
        auth.add_digest(user, password, &token);
        server.set_auth(Some(&auth));
        let role = gst::Structure::builder("viewer")
            .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
            .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
            .build();
        factory.add_role_from_structure(&role);
    }
    server.mount_points().context("RTSP server has no mount points")?.add_factory(&a.path, factory);
    let main_loop = glib::MainLoop::new(None, false);
    server.attach(None).with_context(|| format!("cannot listen on {}:{}", a.address, a.port))?;
    let url = format!("rtsp://{}:{}{}", a.address, server.bound_port(), a.path);
    // gst-rtsp-server 1.22 aborts (an assertion in gst_rtsp_media_get_rates) when a client
    // PLAYs the shared media before its first buffer has flowed, or while it is being torn
    // down after the last client left; a fast client meets both. A client of our own
    // keeps the media prepared and flowing for the camera's whole life, and "ready" is
    // printed only once video flows through it.
    let flowing = Arc::new(AtomicBool::new(false));
    let warm = warm_up_client(&url, a.user.as_deref().zip(a.password.as_deref()), flowing.clone())?;
    glib::timeout_add_local(std::time::Duration::from_millis(20), move || {
        if !flowing.load(Ordering::Relaxed) {
            return glib::ControlFlow::Continue;
        }
        use std::io::Write;
        println!("ready {url}");
        let _ = std::io::stdout().flush();
        glib::ControlFlow::Break
    });
    main_loop.run();
    let _ = warm.set_state(gst::State::Null);
    Ok(())
}

/// An encoded clip: its access units (timestamps from 0) and its length in ns.
struct Clip {
    units: Vec<gst::Buffer>,
    duration_ns: u64,
}

/// Encodes `desc` (a finite source and an encoder) to access units in memory.
fn pre_encode(desc: &str, fps: u32) -> anyhow::Result<Clip> {
    let desc = format!("{desc} ! appsink name=out sync=false");
    let pipeline = gst::parse::launch(&desc)
        .context("encoding the replay clip (ops/setup.sh installs the plugins)")?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("the replay clip's description is not a pipeline"))?;
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok())
        .context("the replay clip's appsink")?;
    pipeline.set_state(gst::State::Playing)?;
    let mut units = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        if let Some(b) = sample.buffer_owned() {
            units.push(b);
        }
    }
    pipeline.set_state(gst::State::Null)?;
    anyhow::ensure!(!units.is_empty(), "the replay clip came out empty");
    let duration_ns = units.len() as u64 * 1_000_000_000 / u64::from(fps.max(1));
    Ok(Clip { units, duration_ns })
}

/// Feeds `clip` to `src` for ever from a thread of its own, one picture per frame interval
/// by the monotonic clock, each stamped by appsrc with the pipeline's running time as it
/// is pushed (`do-timestamp`): the stream runs on like a camera's whatever the media does.
fn feed_in_a_loop(src: gst::Element, clip: Arc<Clip>) {
    let Ok(src) = src.downcast::<gstreamer_app::AppSrc>() else { return };
    let interval = std::time::Duration::from_nanos(clip.duration_ns / clip.units.len().max(1) as u64);
    std::thread::spawn(move || {
        let mut next = std::time::Instant::now();
        for i in (0..clip.units.len()).cycle() {
            let mut b = clip.units[i].copy();
            if let Some(b) = b.get_mut() {
                b.set_pts(gst::ClockTime::NONE);
                b.set_dts(gst::ClockTime::NONE);
            }
            if src.push_buffer(b) == Err(gst::FlowError::Eos) {
                return;
            }
            next += interval;
            std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
        }
    });
}

/// A GStreamer RTSP client of the camera itself that throws the video away; sets
/// `flowing` at its first buffer.
fn warm_up_client(url: &str, creds: Option<(&str, &str)>, flowing: Arc<AtomicBool>) -> anyhow::Result<gst::Pipeline> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("rtspsrc")
        .property("location", url)
        .property("latency", 0u32)
        .build()
        .context("GStreamer element rtspsrc (ops/setup.sh installs it)")?;
    src.set_property_from_str("protocols", "tcp");
    if let Some((user, password)) = creds {
        src.set_property("user-id", user);
        src.set_property("user-pw", password);
    }
    let sink = gst::ElementFactory::make("fakesink").property("sync", false).build()?;
    pipeline.add_many([&src, &sink])?;
    let sink_pad = sink.static_pad("sink").context("fakesink without a pad")?;
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        flowing.store(true, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    src.connect_pad_added(move |_, pad| {
        if !sink_pad.is_linked() {
            let _ = pad.link(&sink_pad);
        }
    });
    pipeline.set_state(gst::State::Playing).context("starting the camera's own client")?;
    Ok(pipeline)
}
