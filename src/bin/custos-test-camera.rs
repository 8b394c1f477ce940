//! `custos-test-camera`: a real RTSP camera for tests, benchmarks and demos, built on
//! GStreamer's RTSP server library. It serves a live test pattern encoded as H.264 or
//! H.265 and prints `ready rtsp://…` on stdout once it accepts connections.

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
    /// Serve at most this many clients at once, as cameras with a session limit do
    /// (further SETUPs are answered 503 Service Unavailable).
    #[arg(long)]
    max_clients: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    gst::init().context("initialising GStreamer")?;
    let enc = match a.codec.as_str() {
        "h264" => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={} ! rtph264pay name=pay0 pt=96 config-interval=-1",
            a.keyint, a.bitrate_kbps
        ),
        "h265" => format!(
            "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={} ! rtph265pay name=pay0 pt=96 config-interval=-1",
            a.keyint, a.bitrate_kbps
        ),
        other => anyhow::bail!("--codec {other:?}: use h264 or h265"),
    };
    let launch = format!(
        "( videotestsrc is-live=true pattern={} ! video/x-raw,format=I420,width={},height={},framerate={}/1 ! {enc} )",
        a.pattern, a.width, a.height, a.fps
    );
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
    factory.connect_media_configure(|_, media| {
        let Some(pay) = media.element().downcast::<gst::Bin>().ok().and_then(|b| b.by_name("pay0")) else {
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
