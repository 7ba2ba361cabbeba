//! The client networks allowed to use the export. nfs3_server accepts its
//! sockets itself and tells the filesystem nothing of the peer, so with an
//! allow list Cairn owns the public port: each connection's peer is
//! checked, refused ones are closed at once, allowed ones are spliced to
//! nfs3_server listening on a loopback port.

use std::net::{IpAddr, SocketAddr};

/// One network: an address and a prefix length (`10.0.0.0/8`, `::1/128`,
/// or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?}: not an address or network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // an IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Allow(Vec<Network>);

impl Allow {
    pub fn new(nets: Vec<Network>) -> Self {
        Self(nets)
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|n| n.contains(ip))
    }
}

/// Listens on `public`, splicing permitted peers to `inner`.
pub async fn front(
    public: SocketAddr,
    inner: SocketAddr,
    allow: Allow,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(public).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let (mut sock, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "NFS accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !allow.permits(peer.ip()) {
                tracing::warn!(%peer, "NFS client outside the allowed networks refused");
                drop(sock);
                continue;
            }
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                match tokio::net::TcpStream::connect(inner).await {
                    Ok(mut up) => {
                        let _ = up.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
                    }
                    Err(e) => tracing::error!(error = %e, "NFS splice to the inner listener"),
                }
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn networks() {
        let n: Network = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!(Allow::new(vec![]).permits("1.2.3.4".parse().unwrap()));
    }
}
