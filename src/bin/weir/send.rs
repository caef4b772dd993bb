//! `weir send`: a capture's UDP datagrams sent again as multicast, to their recorded groups and
//! ports, through a kernel socket: a test feed for `weir run` on another interface or machine.

use std::net::{SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use weir::capture::CaptureReader;
use weir::nic::spec::Pace;
use weir_feeds::frame::peel_udp;

#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    /// The capture.
    file: PathBuf,
    /// Send out of this interface (IP_MULTICAST_IF); the kernel's choice by default.
    #[arg(long, value_name = "NAME")]
    iface: Option<String>,
    /// `max`, `recorded` or `xN` (N times recorded pace).
    #[arg(long, default_value = "max")]
    pace: String,
    /// Multicast TTL.
    #[arg(long, default_value_t = 1)]
    ttl: u32,
    /// Pause between datagrams at `max` pace, in microseconds (a kernel socket buffer on the
    /// receiving side overflows if a whole capture arrives at once).
    #[arg(long, default_value_t = 0)]
    gap_us: u64,
}

pub(crate) fn run(args: SendArgs) -> ExitCode {
    match send(&args) {
        Ok((sent, skipped)) => {
            eprintln!("weir send: {sent} datagrams sent, {skipped} frames skipped (not IPv4/UDP)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir send: {e}");
            ExitCode::from(2)
        }
    }
}

fn send(args: &SendArgs) -> Result<(u64, u64), String> {
    let pace = weir::nic::spec::parse_pace(&args.pace).map_err(|e| format!("--{e}"))?;
    let mut reader = CaptureReader::open(&args.file).map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    socket.set_multicast_ttl_v4(args.ttl).map_err(|e| format!("IP_MULTICAST_TTL: {e}"))?;
    socket.set_multicast_loop_v4(false).map_err(|e| format!("IP_MULTICAST_LOOP: {e}"))?;
    if let Some(name) = &args.iface {
        weir::nic::udp::send_multicast_out_of(&socket, name).map_err(|e| format!("IP_MULTICAST_IF {name}: {e}"))?;
    }
    let (mut sent, mut skipped) = (0u64, 0u64);
    let mut origin: Option<(i64, Instant)> = None;
    while let Some(p) = reader.next_packet().map_err(|e| e.to_string())? {
        let Ok(udp) = peel_udp(p.link, p.data) else {
            skipped += 1;
            continue;
        };
        if let Pace::Times(f) = pace {
            let (ts0, t0) = *origin.get_or_insert((p.ts_ns, Instant::now()));
            let due = t0 + Duration::from_nanos(((p.ts_ns - ts0).max(0) as f64 / f) as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        } else if args.gap_us > 0 {
            std::thread::sleep(Duration::from_micros(args.gap_us));
        }
        let to = SocketAddrV4::new(udp.dst_ip.into(), udp.dst_port);
        socket.send_to(udp.payload, to).map_err(|e| format!("send to {to} (datagram {sent}): {e}"))?;
        sent += 1;
    }
    Ok((sent, skipped))
}
