//! Turning a [`CodecRequest`] into encoders that really open: probed at startup, and again at a
//! session start once the last probe is a minute old.

use std::time::{Duration, Instant};

use ffmpeg_next as ff;

use super::{CodecRequest, EncodeError, EncoderKind, EncoderSettings, stream::open_encoder};

/// Size of the throwaway picture used to probe whether an encoder really opens. NVENC's minimum
/// is 145x49 on some GPUs; 256x256 suits every encoder.
const PROBE_SIZE: u32 = 256;

/// The outcome of probing a request's candidates.
#[derive(Debug, Clone)]
pub struct ResolvedCodec {
    /// Encoders to open, best first: the one that probed fine, then the later fallbacks (a GPU
    /// can still refuse the real size or run out of sessions).
    pub candidates: Vec<EncoderKind>,
    /// Why better candidates were passed over (empty when the first one opened).
    pub passed_over: Vec<EncodeError>,
}

impl ResolvedCodec {
    /// The encoder that probed fine.
    pub fn encoder(&self) -> EncoderKind {
        self.candidates[0]
    }
}

/// Probes `request`'s candidates in order by opening a real encoder.
/// Fails only when none opens; the error names the last one tried.
pub fn resolve_codec(request: CodecRequest, settings: &EncoderSettings) -> Result<ResolvedCodec, EncodeError> {
    let all = request.candidates();
    let mut passed_over = Vec::new();
    for (index, &kind) in all.iter().enumerate() {
        match probe_encoder(kind, settings) {
            Ok(()) => return Ok(ResolvedCodec { candidates: all[index..].to_vec(), passed_over }),
            Err(error) => passed_over.push(error),
        }
    }
    Err(passed_over.pop().expect("every request has at least one candidate"))
}

/// How long a probe's outcome stands before the next session start probes again (a GPU can
/// appear, or run out of encoder sessions, while the node runs).
pub const PROBE_MAX_AGE: Duration = Duration::from_secs(60);

/// The latest probe of one request, reused while it is younger than [`PROBE_MAX_AGE`].
///
/// Probing opens real encoders (NVENC first, which tries to load the CUDA driver). Done on the
/// event loop at every session start, it kept the loop from taking frames off dora's input queue
/// for that long. The node probes once at startup, so the first session starts with the outcome
/// in hand, and probes again only when the outcome is a minute old.
#[derive(Debug)]
pub struct CodecProbe {
    request: CodecRequest,
    settings: EncoderSettings,
    latest: Option<(Instant, Result<ResolvedCodec, EncodeError>)>,
}

impl CodecProbe {
    /// A probe of `request` with `settings` that has not run yet.
    pub fn new(request: CodecRequest, settings: EncoderSettings) -> Self {
        Self { request, settings, latest: None }
    }

    /// The encoders to use at `now`: the latest outcome while it is fresh, else a new probe.
    pub fn resolve(&mut self, now: Instant) -> Result<ResolvedCodec, EncodeError> {
        let (request, settings) = (self.request, &self.settings);
        latest_or(&mut self.latest, now, || resolve_codec(request, settings))
    }
}

/// The outcome in `latest` while it is younger than [`PROBE_MAX_AGE`] at `now`, else `probe`'s,
/// which then becomes the latest.
fn latest_or(
    latest: &mut Option<(Instant, Result<ResolvedCodec, EncodeError>)>,
    now: Instant,
    probe: impl FnOnce() -> Result<ResolvedCodec, EncodeError>,
) -> Result<ResolvedCodec, EncodeError> {
    match latest {
        Some((at, outcome)) if now.saturating_duration_since(*at) < PROBE_MAX_AGE => outcome.clone(),
        _ => {
            let outcome = probe();
            *latest = Some((now, outcome.clone()));
            outcome
        }
    }
}

/// Opens (and drops) a small encoder of `kind`: "compiled in" is not "usable".
pub fn probe_encoder(kind: EncoderKind, settings: &EncoderSettings) -> Result<(), EncodeError> {
    // A failed probe is expected on machines without a GPU and is reported once by the caller;
    // FFmpeg's own "Cannot load libcuda.so.1" line would repeat at every session start.
    ff::util::log::set_level(ff::util::log::Level::Fatal);
    let probe = open_encoder(kind, PROBE_SIZE, PROBE_SIZE, settings).map(drop);
    ff::util::log::set_level(ff::util::log::Level::Error);
    probe
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn software() -> Result<ResolvedCodec, EncodeError> {
        Ok(ResolvedCodec { candidates: vec![EncoderKind::Libx264], passed_over: Vec::new() })
    }

    #[test]
    fn a_fresh_outcome_is_reused_and_a_stale_one_probed_again() {
        let mut latest = None;
        let start = Instant::now();
        let probes = Cell::new(0);
        let count = || {
            probes.set(probes.get() + 1);
            software()
        };
        assert!(latest_or(&mut latest, start, count).is_ok());
        assert!(latest_or(&mut latest, start + Duration::from_secs(59), count).is_ok());
        assert_eq!(probes.get(), 1, "within a minute the first outcome stands");
        assert!(latest_or(&mut latest, start + PROBE_MAX_AGE, count).is_ok());
        assert_eq!(probes.get(), 2, "a minute later the encoders are probed again");
    }

    #[test]
    fn a_failed_probe_is_remembered_like_a_good_one() {
        let mut latest = None;
        let now = Instant::now();
        let failure = EncodeError::EncoderMissing { encoder: "libx264", hint: "install it" };
        assert!(latest_or(&mut latest, now, || Err(failure.clone())).is_err());
        assert!(latest_or(&mut latest, now, software).is_err(), "the failure stands until it is stale");
    }
}
