//! `custos-test-camera`: a real RTSP camera for tests, benchmarks and demos, built on
//! GStreamer's RTSP server library. It serves a live test pattern encoded as H.264 or
//! H.265 and prints `ready rtsp://…` on stdout once it accepts connections.

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
    server.set_address(&a.address);
    server.set_service(&a.port.to_string());
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&launch);
    // One encoder shared by every client, as a camera has.
    factory.set_shared(true);
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
    println!("ready rtsp://{}:{}{}", a.address, server.bound_port(), a.path);
    use std::io::Write;
    std::io::stdout().flush()?;
    main_loop.run();
    Ok(())
}
