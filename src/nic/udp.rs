//! Kernel UDP sockets joined to a multicast group: the live path on a machine without DPDK.
//!
//! One non-blocking socket per group, bound to the group address and port (so only that group's
//! datagrams arrive), joined with `IP_ADD_MEMBERSHIP` (the kernel then speaks IGMP for us). A burst
//! is one `recvmmsg` of up to [`BURST`] datagrams into buffers allocated at open. The kernel
//! stamps each datagram (`SO_TIMESTAMPNS`) and reports its socket-buffer drops (`SO_RXQ_OVFL`),
//! which become [`QueueStats::missed`].
//!
//! Frames from this queue are UDP payloads ([`Framing::UdpPayload`]): the kernel has peeled the
//! Ethernet, IP and UDP headers.

use std::ffi::CString;
use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::spec::Group;
use super::{BURST, Frame, Framing, QueueStats, RxQueue, TimestampSource};

/// Largest datagram kept whole: a jumbo frame's payload. Longer ones are counted as truncated.
const SLOT: usize = 9216;
/// Room for the two control messages asked for: a `timespec` (SO_TIMESTAMPNS) and a `u32`
/// (SO_RXQ_OVFL), each behind its header, aligned as `CMSG_SPACE` aligns them.
const CMSG_SPACE: usize = cmsg_space(mem::size_of::<libc::timespec>()) + cmsg_space(mem::size_of::<u32>());

/// `CMSG_SPACE(len)`: the header and the data, each rounded up to the header's alignment.
const fn cmsg_space(len: usize) -> usize {
    let align = mem::size_of::<usize>();
    mem::size_of::<libc::cmsghdr>().div_ceil(align) * align + len.div_ceil(align) * align
}

/// A control buffer aligned for `cmsghdr` (the kernel and the CMSG_* macros read headers in place).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; CMSG_SPACE]);

const _: () = assert!(mem::align_of::<Control>() >= mem::align_of::<libc::cmsghdr>());

/// A control-path failure: which step, on which group.
#[derive(Debug, thiserror::Error)]
#[error("udp {group}: {step}: {source}")]
pub struct UdpError {
    /// The group.
    pub group: Group,
    /// What was being done (`socket`, `bind`, `IP_ADD_MEMBERSHIP on eth1`, ...).
    pub step: String,
    /// The OS error.
    pub source: io::Error,
}

/// A multicast group received through a kernel socket.
pub struct UdpRx {
    socket: OwnedFd,
    group: Group,
    iface: Option<String>,
    buffers: Box<[[u8; SLOT]]>,
    /// Pointed into by `headers` (kept alive, never read directly).
    _control: Box<[Control]>,
    _iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
    /// Per datagram of the current burst: length and kernel timestamp.
    lens: [usize; BURST],
    stamps: [i64; BURST],
    received: usize,
    /// The kernel's cumulative drop count for this socket.
    kernel_drops: u32,
    truncated: u64,
    /// recvmmsg failures other than "nothing waiting", and bursts whose control data was cut.
    failures: u64,
    stats: QueueStats,
}

impl std::fmt::Debug for UdpRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRx").field("group", &self.group).field("iface", &self.iface).finish_non_exhaustive()
    }
}

// SAFETY: the raw pointers inside `iovecs` and `headers` point into the boxed buffers this value
// owns (heap memory that does not move when the value does); nothing else shares them.
unsafe impl Send for UdpRx {}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The index of interface `name`.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 { Err(io::Error::last_os_error()) } else { Ok(index) }
}

/// Makes `socket`'s multicast go out of interface `name` (`IP_MULTICAST_IF` by index).
pub fn send_multicast_out_of(socket: &std::net::UdpSocket, name: &str) -> io::Result<()> {
    let index = interface_index(name)?;
    let mreq = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: index as libc::c_int,
    };
    let fd = socket.as_raw_fd();
    // SAFETY: `mreq` is a valid ip_mreqn and its size is passed with it; `fd` is a live socket.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&mreq as *const libc::ip_mreqn).cast(),
            mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

impl UdpRx {
    /// Opens a socket on `group`, joined on `iface` (the kernel's default route otherwise).
    pub fn open(group: Group, iface: Option<&str>) -> Result<UdpRx, UdpError> {
        let fail = |step: &str, source: io::Error| UdpError { group, step: step.to_owned(), source };
        if !group.addr.is_multicast() {
            return Err(fail(
                "group",
                io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a multicast address", group.addr)),
            ));
        }
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(fail("socket", io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        setsockopt(&socket, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one).map_err(|e| fail("SO_REUSEADDR", e))?;
        setsockopt(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &one).map_err(|e| fail("SO_TIMESTAMPNS", e))?;
        setsockopt(&socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &one).map_err(|e| fail("SO_RXQ_OVFL", e))?;
        // A deep socket buffer absorbs bursts; the kernel caps it at net.core.rmem_max (no error).
        let rcvbuf: libc::c_int = 16 << 20;
        setsockopt(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf).map_err(|e| fail("SO_RCVBUF", e))?;
        let ifindex = match iface {
            Some(name) => interface_index(name).map_err(|e| fail(&format!("interface {name}"), e))?,
            None => 0,
        };
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: group.port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(group.addr.octets()) },
            sin_zero: [0; 8],
        };
        // SAFETY: `addr` is a valid sockaddr_in and its size is passed with it.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_in).cast(),
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(fail("bind", io::Error::last_os_error()));
        }
        let mreq = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: u32::from_ne_bytes(group.addr.octets()) },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex as libc::c_int,
        };
        let on = iface.map(|i| format!("IP_ADD_MEMBERSHIP on {i}")).unwrap_or_else(|| "IP_ADD_MEMBERSHIP".into());
        setsockopt(&socket, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq).map_err(|e| fail(&on, e))?;

        let mut buffers = vec![[0u8; SLOT]; BURST].into_boxed_slice();
        let mut control = vec![Control([0u8; CMSG_SPACE]); BURST].into_boxed_slice();
        let mut iovecs: Box<[libc::iovec]> =
            buffers.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: SLOT }).collect();
        let headers: Box<[libc::mmsghdr]> = iovecs
            .iter_mut()
            .zip(control.iter_mut())
            .map(|(iov, ctl)| {
                // SAFETY: an all-zero msghdr is valid (null name, no iovecs, no control).
                let mut h: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_control = ctl.0.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = CMSG_SPACE;
                h
            })
            .collect();
        Ok(UdpRx {
            socket,
            group,
            iface: iface.map(str::to_owned),
            buffers,
            _control: control,
            _iovecs: iovecs,
            headers,
            lens: [0; BURST],
            stamps: [0; BURST],
            received: 0,
            kernel_drops: 0,
            truncated: 0,
            failures: 0,
            stats: QueueStats::default(),
        })
    }

    /// Datagrams longer than a slot (cut short; their tail is lost).
    pub fn truncated(&self) -> u64 {
        self.truncated
    }
}

impl RxQueue for UdpRx {
    fn rx_burst(&mut self) -> usize {
        for h in self.headers.iter_mut() {
            h.msg_hdr.msg_controllen = CMSG_SPACE;
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: `headers` holds BURST mmsghdrs whose iovecs and control buffers point into
        // `buffers` and `control`, owned by `self` and alive for the call; MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BURST as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            // EAGAIN: nothing waiting. Other errors (ENOMEM, ...) are transient for a bound socket,
            // but counted.
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                self.failures += 1;
            }
            self.received = 0;
            self.stats.empty_polls += 1;
            return 0;
        }
        let n = n as usize;
        for i in 0..n {
            let h = &self.headers[i];
            let len = h.msg_len as usize;
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.truncated += 1;
            }
            if h.msg_hdr.msg_flags & libc::MSG_CTRUNC != 0 {
                self.failures += 1;
            }
            self.lens[i] = len.min(SLOT);
            self.stamps[i] = 0;
            // SAFETY: the kernel filled `msg_control` (an aligned `Control` owned by `self`) with
            // `msg_controllen` bytes of cmsgs; CMSG_FIRSTHDR/CMSG_NXTHDR return only headers that
            // lie whole within that length, and each data read checks `cmsg_len` covers it.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                while !c.is_null() {
                    let (level, kind, len) = ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize);
                    let holds = |n: usize| len >= libc::CMSG_LEN(n as u32) as usize;
                    if level == libc::SOL_SOCKET
                        && kind == libc::SO_TIMESTAMPNS
                        && holds(mem::size_of::<libc::timespec>())
                    {
                        let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                        self.stamps[i] = ts.tv_sec * 1_000_000_000 + ts.tv_nsec;
                    } else if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL && holds(mem::size_of::<u32>()) {
                        self.kernel_drops = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u32);
                    }
                    c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
                }
            }
            self.stats.bytes += self.lens[i] as u64;
        }
        self.received = n;
        self.stats.packets += n as u64;
        self.stats.bursts += 1;
        n
    }

    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        assert!(i < self.received, "frame {i} of a burst of {}", self.received);
        Frame {
            data: &self.buffers[i][..self.lens[i]],
            framing: Framing::UdpPayload,
            rx_ns: self.stamps[i],
            ts_source: TimestampSource::Kernel,
            locus: self.stats.packets - (self.received - i) as u64,
        }
    }

    fn stats(&mut self) -> QueueStats {
        // Datagrams cut to a slot and failed receives are the socket's errors.
        QueueStats { missed: u64::from(self.kernel_drops), errors: self.truncated + self.failures, ..self.stats }
    }

    fn name(&self) -> String {
        match &self.iface {
            Some(i) => format!("udp:{},iface={i}", self.group),
            None => format!("udp:{}", self.group),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};

    #[test]
    fn receives_multicast_on_loopback() {
        // Loopback carries multicast when the route allows it; if this host has no multicast
        // route at all, the join fails and says so.
        let group = Group { addr: Ipv4Addr::new(239, 255, 77, 1), port: 0 };
        let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let group = Group { port, ..group };
        let mut rx = match UdpRx::open(group, Some("lo")) {
            Ok(rx) => rx,
            Err(e) => panic!("{e}"),
        };
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_multicast_loop_v4(true).unwrap();
        send_multicast_out_of(&tx, "lo").unwrap();
        for i in 0..40u32 {
            tx.send_to(&i.to_le_bytes(), (group.addr, port)).unwrap();
        }
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 40 && std::time::Instant::now() < deadline {
            let n = rx.rx_burst();
            for i in 0..n {
                let f = rx.frame(i);
                assert_eq!(f.framing, Framing::UdpPayload);
                assert!(f.rx_ns > 1_600_000_000_000_000_000, "kernel timestamp {}", f.rx_ns);
                got.push(u32::from_le_bytes(f.data.try_into().unwrap()));
            }
        }
        assert_eq!(got, (0..40).collect::<Vec<_>>());
        let s = rx.stats();
        assert_eq!((s.packets, s.bytes, s.missed), (40, 160, 0));
        assert!(s.bursts >= 2, "40 datagrams need at least two bursts of {BURST}");
    }

    #[test]
    fn control_buffer_fits_both_messages_as_libc_sizes_them() {
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        let libc_space = unsafe {
            libc::CMSG_SPACE(mem::size_of::<libc::timespec>() as u32) + libc::CMSG_SPACE(mem::size_of::<u32>() as u32)
        };
        assert_eq!(CMSG_SPACE, libc_space as usize);
    }

    #[test]
    fn refuses_a_unicast_group_and_a_missing_interface() {
        let e = UdpRx::open(Group { addr: Ipv4Addr::new(10, 0, 0, 1), port: 5 }, None).unwrap_err();
        assert!(e.to_string().contains("not a multicast address"), "{e}");
        let e = UdpRx::open(Group { addr: Ipv4Addr::new(239, 1, 1, 1), port: 5 }, Some("no-such-if0")).unwrap_err();
        assert!(e.to_string().contains("interface no-such-if0"), "{e}");
    }
}
