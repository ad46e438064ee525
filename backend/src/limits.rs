//! Rate limits and connection caps: what one client address or one user may do, so that nobody
//! can take the server from everyone else.
//!
//! Rates are GCRA buckets from `governor`, one per key: per client address for login and
//! registration, per username for login (a password cannot be guessed from many addresses at
//! once), per user for sends and for other requests. A refusal says how long to wait
//! ([`RetryAfter`]): HTTP answers 429 with `Retry-After`, the socket an `error` frame with code
//! `rate_limited` and `retry_after_ms`.
//!
//! Open WebSockets are counted per user and per address ([`SocketSlots`]); each open socket holds
//! a [`SocketSlot`] that gives its place back when dropped.
//!
//! These limits are per server process. With several nodes behind a load balancer each node
//! keeps its own counts, so the effective limit is at most the per-node limit times the number of
//! nodes a client reaches.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Config;
use crate::store::UserId;

/// The key of a client address for per-address limits: an IPv4 address as is (an IPv4-mapped
/// IPv6 address as its IPv4 form), an IPv6 address by its /64 network, since one host usually
/// holds a whole /64 and could otherwise take a fresh address for every request.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// How long a refused client should wait before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Milliseconds, at least 1.
    pub fn millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Whole seconds, rounded up, at least 1 (for the `Retry-After` header).
    pub fn secs(self) -> u64 {
        self.millis().div_ceil(1000)
    }
}

/// One keyed limiter, or none when the limit is off.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    /// The most cells one check may take.
    burst: NonZeroU32,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// `per_period` events per `period` sustained, with bursts of `burst` (0 per period: off).
    fn new(per_period: u32, period: Duration, burst: u32) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter = NonZeroU32::new(per_period).and_then(|n| {
            let quota = Quota::with_period(period / n.get())?;
            Some(DefaultKeyedRateLimiter::keyed(quota.allow_burst(burst)))
        });
        Self {
            limiter,
            burst,
            clock: DefaultClock::default(),
        }
    }

    /// Takes `n` more cells for a request that already took one: at most the burst less that
    /// one, so that a costly request stays possible once the bucket is full again.
    fn check_n(&self, key: &K, n: u32) -> Result<(), RetryAfter> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let most = NonZeroU32::new(self.burst.get() - 1).unwrap_or(NonZeroU32::MIN);
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        let n = n.min(most);
        match limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(RetryAfter(not_until.wait_time_from(self.clock.now()))),
            // Cannot happen: `n` is below the burst.
            Err(_) => Err(RetryAfter(Duration::from_secs(1))),
        }
    }

    fn check(&self, key: &K) -> Result<(), RetryAfter> {
        match &self.limiter {
            None => Ok(()),
            Some(limiter) => limiter
                .check_key(key)
                .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now()))),
        }
    }

    /// Forgets keys whose bucket is full again (they would be allowed a full burst anyway).
    fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Every rate limit of the server.
pub struct RateLimits {
    auth_by_addr: Keyed<IpAddr>,
    login_by_name: Keyed<String>,
    sends: Keyed<UserId>,
    requests: Keyed<UserId>,
}

impl RateLimits {
    /// The limits the configuration asks for.
    pub fn new(config: &Config) -> Self {
        let minute = Duration::from_secs(60);
        let second = Duration::from_secs(1);
        // Auth: bursts of half a minute's allowance, so a person who mistypes twice is not
        // locked out, while a guesser gets `auth_per_minute` tries a minute.
        let auth_burst = config.auth_per_minute.div_ceil(2);
        Self {
            auth_by_addr: Keyed::new(config.auth_per_minute, minute, auth_burst),
            // Five times the per-address allowance: one address alone cannot lock a name out,
            // and guessing one password from many addresses stays slow.
            login_by_name: Keyed::new(
                config.auth_per_minute.saturating_mul(5),
                minute,
                auth_burst.saturating_mul(5),
            ),
            sends: Keyed::new(
                config.sends_per_second,
                second,
                config.sends_per_second.saturating_mul(5),
            ),
            requests: Keyed::new(
                config.requests_per_second,
                second,
                config.requests_per_second.saturating_mul(5),
            ),
        }
    }

    /// A login or registration attempt from `addr`.
    pub fn auth_attempt(&self, addr: IpAddr) -> Result<(), RetryAfter> {
        self.auth_by_addr.check(&client_key(addr))
    }

    /// A login attempt for `username` (already lowercased), from any address.
    pub fn login_attempt(&self, username: &str) -> Result<(), RetryAfter> {
        self.login_by_name.check(&username.to_owned())
    }

    /// A message (or any other write to a room's log) by `user`.
    pub fn send(&self, user: UserId) -> Result<(), RetryAfter> {
        self.sends.check(&user)
    }

    /// Any other request by `user`: join, leave, history, room creation, room listing.
    pub fn request(&self, user: UserId) -> Result<(), RetryAfter> {
        self.requests.check(&user)
    }

    /// `n` more requests' worth for a request by `user` that costs more than one (a long
    /// catch-up); call after [`Self::request`] took the first.
    pub fn request_n(&self, user: UserId, n: u32) -> Result<(), RetryAfter> {
        self.requests.check_n(&user, n)
    }

    /// Drops the state of keys that are idle; run periodically so that memory follows the
    /// active clients, not every address ever seen.
    pub fn prune(&self) {
        self.auth_by_addr.prune();
        self.login_by_name.prune();
        self.sends.prune();
        self.requests.prune();
    }
}

/// Why a socket was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefused {
    /// The user has the most sockets allowed open.
    User,
    /// The address has the most sockets allowed open.
    Address,
}

#[derive(Default)]
struct Counts {
    users: HashMap<UserId, u32>,
    addrs: HashMap<IpAddr, u32>,
}

/// Open WebSockets per user and per address. A `std` mutex: held for two map updates, never
/// across `.await`.
pub struct SocketSlots {
    per_user: u32,
    per_addr: u32,
    counts: Arc<Mutex<Counts>>,
}

/// One open socket's place; dropping it frees the place.
pub struct SocketSlot {
    user: UserId,
    addr: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl SocketSlots {
    /// Caps of `per_user` and `per_addr` open sockets (0: no cap).
    pub fn new(per_user: u32, per_addr: u32) -> Self {
        Self {
            per_user,
            per_addr,
            counts: Arc::default(),
        }
    }

    /// Takes a place for a socket of `user` from `addr`, if both are under their caps.
    pub fn acquire(&self, user: UserId, addr: IpAddr) -> Result<SocketSlot, SlotRefused> {
        let addr = client_key(addr);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let by_user = counts.users.get(&user).copied().unwrap_or(0);
        if self.per_user > 0 && by_user >= self.per_user {
            return Err(SlotRefused::User);
        }
        let by_addr = counts.addrs.get(&addr).copied().unwrap_or(0);
        if self.per_addr > 0 && by_addr >= self.per_addr {
            return Err(SlotRefused::Address);
        }
        *counts.users.entry(user).or_insert(0) += 1;
        *counts.addrs.entry(addr).or_insert(0) += 1;
        Ok(SocketSlot {
            user,
            addr,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let Counts { users, addrs } = &mut *counts;
        decrement(users, &self.user);
        decrement(addrs, &self.addr);
    }
}

fn decrement<K: Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        Config::parse_from(std::iter::once("backend").chain(args.iter().copied()))
    }

    #[test]
    fn a_burst_passes_then_the_next_is_told_when_to_come_back() {
        let limits = RateLimits::new(&config(&["--sends-per-second", "2"]));
        for _ in 0..10 {
            assert!(
                limits.send(1).is_ok(),
                "a burst of five seconds' worth passes"
            );
        }
        let wait = limits.send(1).expect_err("the eleventh is refused");
        assert!(wait.0 > Duration::ZERO && wait.0 <= Duration::from_millis(500));
        assert!(limits.send(2).is_ok(), "other users are not affected");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().expect("ip");
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 7]));
        assert_eq!(
            client_key(IpAddr::from([10, 0, 0, 7])),
            IpAddr::from([10, 0, 0, 7])
        );
    }

    #[test]
    fn a_limit_of_zero_is_off() {
        let limits = RateLimits::new(&config(&["--auth-per-minute", "0"]));
        let addr = IpAddr::from([127, 0, 0, 1]);
        assert!((0..1000).all(|_| limits.auth_attempt(addr).is_ok()));
    }

    #[test]
    fn socket_places_are_counted_per_user_and_address_and_given_back() {
        let slots = SocketSlots::new(2, 3);
        let a = IpAddr::from([127, 0, 0, 1]);
        let b = IpAddr::from([127, 0, 0, 2]);
        let first = slots.acquire(1, a).expect("first");
        let _second = slots.acquire(1, a).expect("second");
        assert_eq!(slots.acquire(1, b).err(), Some(SlotRefused::User));
        let _third = slots.acquire(2, a).expect("another user");
        assert_eq!(slots.acquire(3, a).err(), Some(SlotRefused::Address));
        drop(first);
        assert!(
            slots.acquire(3, a).is_ok(),
            "a closed socket frees its place"
        );
    }
}
