//! `--nic` strings: which backend, on what, with which options.
//!
//! ```text
//! pcap:FILE[,pace=max|recorded|xN]          replay a capture (default pace: max)
//! udp:GROUP:PORT[,iface=NAME]               kernel socket joined to a multicast group
//! dpdk:DEVICE[,queue=Q][,group=GROUP:PORT]  a DPDK port: a vdev (`net_pcap0`, with its own
//!                                           `key=value` arguments) or a PCI address
//! ```
//!
//! A DPDK vdev takes `key=value` arguments of its own (`net_pcap0,rx_pcap=F`), so in a `dpdk:`
//! spec only `queue=` and `group=` are weir's; everything else goes to the device. Only queue 0
//! opens today: weir does not steer traffic to other queues yet (no RSS or rte_flow rules), and
//! the DPDK backend says so.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// How fast a capture is replayed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// As fast as the queue is polled.
    Max,
    /// At the pace the capture recorded, times this factor (1.0: recorded pace).
    Times(f64),
}

/// A multicast group and UDP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group address.
    pub addr: Ipv4Addr,
    /// The UDP destination port.
    pub port: u16,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addr, self.port)
    }
}

/// One `--nic` value, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum NicSpec {
    /// Replay a capture file.
    Pcap {
        /// The capture.
        path: PathBuf,
        /// Its pace.
        pace: Pace,
    },
    /// A kernel UDP socket joined to a multicast group.
    Udp {
        /// The group and port.
        group: Group,
        /// The interface to join on (the kernel's choice by default).
        iface: Option<String>,
    },
    /// A DPDK port.
    Dpdk {
        /// The device: `net_xxx[,dev args]` for a vdev, or a PCI address.
        device: String,
        /// The receive queue.
        queue: u16,
        /// Groups to admit (multicast MAC filter on the device; a software filter in the poll
        /// loop). Empty: everything.
        groups: Vec<Group>,
    },
}

/// A `--nic` value that does not parse: says which part and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--nic {spec:?}: {why}")]
pub struct SpecError {
    /// The whole value.
    pub spec: String,
    /// What is wrong with it.
    pub why: String,
}

impl NicSpec {
    /// Parses a `--nic` value.
    pub fn parse(spec: &str) -> Result<NicSpec, SpecError> {
        let err = |why: String| SpecError { spec: spec.to_owned(), why };
        let (kind, rest) = spec
            .split_once(':')
            .ok_or_else(|| err("expected BACKEND:..., with BACKEND one of pcap, udp, dpdk".into()))?;
        match kind {
            "pcap" => {
                let mut parts = rest.split(',');
                let path = parts.next().filter(|p| !p.is_empty()).ok_or_else(|| err("pcap: needs a file".into()))?;
                let mut pace = Pace::Max;
                for opt in parts {
                    match opt.split_once('=') {
                        Some(("pace", v)) => pace = parse_pace(v).map_err(err)?,
                        _ => return Err(err(format!("pcap: unknown option {opt:?} (known: pace=max|recorded|xN)"))),
                    }
                }
                Ok(NicSpec::Pcap { path: PathBuf::from(path), pace })
            }
            "udp" => {
                let mut parts = rest.split(',');
                let group = parse_group(parts.next().unwrap_or("")).map_err(|e| err(format!("udp: {e}")))?;
                let mut iface = None;
                for opt in parts {
                    match opt.split_once('=') {
                        Some(("iface", v)) if !v.is_empty() => iface = Some(v.to_owned()),
                        _ => return Err(err(format!("udp: unknown option {opt:?} (known: iface=NAME)"))),
                    }
                }
                Ok(NicSpec::Udp { group, iface })
            }
            "dpdk" => {
                let mut device = Vec::new();
                let mut queue = 0;
                let mut groups = Vec::new();
                for (i, part) in rest.split(',').enumerate() {
                    match part.split_once('=') {
                        Some(("queue", v)) => {
                            queue = v.parse().map_err(|_| err(format!("dpdk: queue={v}: not a queue number")))?
                        }
                        Some(("group", v)) => groups.push(parse_group(v).map_err(|e| err(format!("dpdk: {e}")))?),
                        _ if i == 0 && part.is_empty() => return Err(err("dpdk: needs a device".into())),
                        _ => device.push(part),
                    }
                }
                if device.is_empty() {
                    return Err(err("dpdk: needs a device".into()));
                }
                Ok(NicSpec::Dpdk { device: device.join(","), queue, groups })
            }
            other => Err(err(format!("unknown backend {other:?} (known: pcap, udp, dpdk)"))),
        }
    }
}

/// The slowest and fastest pace factors accepted: beyond them a replay would never deliver, or
/// the factor would mean nothing but "max".
pub const PACE_RANGE: std::ops::RangeInclusive<f64> = 1e-3..=1e9;

/// `max`, `recorded` or `xN` (`N` in [`PACE_RANGE`]).
pub fn parse_pace(v: &str) -> Result<Pace, String> {
    match v {
        "max" => Ok(Pace::Max),
        "recorded" => Ok(Pace::Times(1.0)),
        _ => match v.strip_prefix('x').and_then(|f| f.parse::<f64>().ok()) {
            Some(f) if PACE_RANGE.contains(&f) => Ok(Pace::Times(f)),
            _ => Err(format!(
                "pace={v}: expected max, recorded or xN with N from {} to {} (x8: eight times recorded pace)",
                PACE_RANGE.start(),
                PACE_RANGE.end()
            )),
        },
    }
}

/// `GROUP:PORT`, e.g. `233.215.21.4:10378`.
pub fn parse_group(v: &str) -> Result<Group, String> {
    let (addr, port) = v.rsplit_once(':').ok_or_else(|| format!("{v:?}: expected GROUP:PORT"))?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{addr:?}: not an IPv4 address"))?;
    let port: u16 = port.parse().map_err(|_| format!("{port:?}: not a UDP port"))?;
    Ok(Group { addr, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_backend() {
        assert_eq!(
            NicSpec::parse("pcap:a/b.pcap.gz,pace=x8").unwrap(),
            NicSpec::Pcap { path: "a/b.pcap.gz".into(), pace: Pace::Times(8.0) }
        );
        assert_eq!(NicSpec::parse("pcap:f").unwrap(), NicSpec::Pcap { path: "f".into(), pace: Pace::Max });
        assert_eq!(
            NicSpec::parse("pcap:f,pace=recorded").unwrap(),
            NicSpec::Pcap { path: "f".into(), pace: Pace::Times(1.0) }
        );
        assert_eq!(
            NicSpec::parse("udp:233.215.21.4:10378,iface=vb").unwrap(),
            NicSpec::Udp {
                group: Group { addr: Ipv4Addr::new(233, 215, 21, 4), port: 10378 },
                iface: Some("vb".into())
            }
        );
        assert_eq!(
            NicSpec::parse("dpdk:net_pcap0,rx_pcap=/tmp/x.pcap,queue=1,group=233.1.2.3:99").unwrap(),
            NicSpec::Dpdk {
                device: "net_pcap0,rx_pcap=/tmp/x.pcap".into(),
                queue: 1,
                groups: vec![Group { addr: Ipv4Addr::new(233, 1, 2, 3), port: 99 }]
            }
        );
        assert_eq!(
            NicSpec::parse("dpdk:0000:3b:00.0").unwrap(),
            NicSpec::Dpdk { device: "0000:3b:00.0".into(), queue: 0, groups: vec![] }
        );
    }

    #[test]
    fn errors_name_the_part() {
        for (bad, says) in [
            ("nope", "BACKEND"),
            ("tcp:x", "unknown backend \"tcp\""),
            ("pcap:", "needs a file"),
            ("pcap:f,pace=x0", "pace=x0"),
            ("pcap:f,pace=x1e-300", "pace=x1e-300"),
            ("pcap:f,pace=xNaN", "pace=xNaN"),
            ("pcap:f,speed=2", "unknown option \"speed=2\""),
            ("udp:233.1.1.1", "GROUP:PORT"),
            ("udp:233.1.1:5", "not an IPv4"),
            ("udp:233.1.1.1:99999", "not a UDP port"),
            ("dpdk:", "needs a device"),
            ("dpdk:net_null0,queue=x", "queue=x"),
        ] {
            let e = NicSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
