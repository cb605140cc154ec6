//! Turning a [`CodecRequest`] into encoders that really open, once per recording start.

use super::{CodecRequest, EncodeError, EncoderKind, EncoderSettings, probe_encoder};

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
