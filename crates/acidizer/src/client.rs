//! Who a client is, for the limits of `acidizer serve`: its IPv4 address, or its IPv6 /64 (the prefix one
//! subscriber gets, in which it may rotate addresses at will).

use std::net::{IpAddr, Ipv6Addr};

/// The client behind `ip`: its IPv4 address (also when it comes IPv4-mapped), or its IPv6 /64.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_one_its_address() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        assert_eq!(client_of(one), client_of(other));
        assert_ne!(client_of(one), client_of("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(client_of("::ffff:192.0.2.7".parse().unwrap()), client_of("192.0.2.7".parse().unwrap()));
        assert_ne!(client_of("192.0.2.7".parse().unwrap()), client_of("192.0.2.8".parse().unwrap()));
    }
}
