//! Wall-clock time for journals and downtime.
//!
//! Unit tests run plans over the in-memory engine on tokio's paused clock, so that a 10 s settle
//! or a 5 min outage costs no real time; there the wall clock follows tokio's virtual one, and
//! the downtime a test reads is the one its virtual timeline produced.

use std::time::SystemTime;

#[cfg(not(test))]
pub fn now() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
pub fn now() -> SystemTime {
    use std::sync::OnceLock;
    static BASE: OnceLock<(SystemTime, std::time::Instant)> = OnceLock::new();
    let (wall, mono) = *BASE.get_or_init(|| (SystemTime::now(), std::time::Instant::now()));
    let virtual_now = tokio::time::Instant::now().into_std();
    match virtual_now.checked_duration_since(mono) {
        Some(ahead) => wall + ahead,
        None => wall - mono.duration_since(virtual_now),
    }
}

/// Milliseconds since the epoch, as the journal keeps instants.
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

pub fn from_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

/// Durations journaled as milliseconds.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
