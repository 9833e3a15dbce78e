//! Who a client is, for the per-client limits: its IPv4 address, or its IPv6 /64 (the prefix one subscriber gets,
//! in which it may rotate addresses at will).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A client: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    /// The client behind `ip`: its IPv4 address (also when it comes IPv4-mapped), or its IPv6 /64.
    pub fn of(ip: IpAddr) -> Self {
        Self(match ip {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::V6(Ipv6Addr::from(segments))
                }
            },
        })
    }

    /// The address that stands for the client (an IPv6 /64's first address).
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(ip: &str) -> ClientAddress {
        ClientAddress::of(ip.parse().unwrap())
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_one_its_address() {
        assert_eq!(client("2001:db8:1:2:aaaa::1"), client("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(client("2001:db8:1:2:aaaa::1"), client("2001:db8:1:3::1"));
        assert_eq!(client("::ffff:192.0.2.7"), client("192.0.2.7"));
        assert_ne!(client("192.0.2.7"), client("192.0.2.8"));
        assert_eq!(client("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(client("::ffff:192.0.2.7").to_string(), "192.0.2.7");
    }
}
