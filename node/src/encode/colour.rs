//! Which colour matrix a recording uses, and the tags that tell players so.
//!
//! Players pick the matrix from the stream's tags, and assume BT.709 for untagged HD: a file
//! converted with swscale's default BT.601 matrix and left untagged shows shifted reds and
//! greens. The rule here follows what players assume for untagged video, so even a player that
//! ignores the tags shows the right colours: BT.709 for HD and above (at least 1280 pixels wide
//! or 720 lines high), BT.601 (SMPTE 170M) below. Range is limited ("TV", 16-235), what every H.264 player
//! expects by default.

use ffmpeg_next::{self as ff, color, software::scaling};

use crate::frame::ycbcr::LumaWeights;

/// A Y'CbCr matrix with its primaries and transfer characteristics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourMatrix {
    /// SD: ITU-R BT.601 (SMPTE 170M), the matrix of untagged SD video.
    Bt601,
    /// HD: ITU-R BT.709.
    Bt709,
}

impl ColourMatrix {
    /// The matrix for a picture of this size.
    pub fn for_size(width: u32, height: u32) -> Self {
        if width >= 1280 || height >= 720 { Self::Bt709 } else { Self::Bt601 }
    }

    /// The matrix's luma weights, for converting Y'CbCr from another matrix into it.
    pub fn luma_weights(self) -> LumaWeights {
        match self {
            Self::Bt601 => LumaWeights::BT601,
            Self::Bt709 => LumaWeights::BT709,
        }
    }

    /// Tags the encoder so the stream (H.264/H.265 VUI) and container carry the matrix,
    /// primaries, transfer and limited range.
    pub fn tag_encoder(self, video: &mut ff::encoder::video::Video) {
        let (space, primaries, transfer) = match self {
            Self::Bt601 => {
                (color::Space::SMPTE170M, color::Primaries::SMPTE170M, color::TransferCharacteristic::SMPTE170M)
            }
            Self::Bt709 => (color::Space::BT709, color::Primaries::BT709, color::TransferCharacteristic::BT709),
        };
        video.set_colorspace(space);
        video.set_color_primaries(primaries);
        video.set_color_transfer_characteristic(transfer);
        video.set_color_range(color::Range::MPEG);
    }

    /// Makes `context` convert full-range RGB into limited-range Y'CbCr with this matrix (the
    /// swscale path the convert benchmark compares against; the recorder converts RGB with
    /// yuvutils-rs).
    pub fn configure_scaler(self, context: &mut scaling::Context) -> Result<(), ff::Error> {
        let standard = match self {
            Self::Bt601 => ff::ffi::SWS_CS_ITU601,
            Self::Bt709 => ff::ffi::SWS_CS_ITU709,
        };
        // SAFETY: the context is a valid, initialized SwsContext owned by `context`; the
        // coefficient tables are static arrays inside libswscale.
        let status = unsafe {
            let table = ff::ffi::sws_getCoefficients(standard);
            // Source range 1 = full (RGB), destination range 0 = limited; brightness 0,
            // contrast and saturation 1.0 in 16.16 fixed point.
            ff::ffi::sws_setColorspaceDetails(context.as_mut_ptr(), table, 1, table, 0, 0, 1 << 16, 1 << 16)
        };
        if status < 0 { Err(ff::Error::from(status)) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hd_and_above_use_bt709_and_sd_bt601() {
        assert_eq!(ColourMatrix::for_size(1920, 1080), ColourMatrix::Bt709);
        assert_eq!(ColourMatrix::for_size(1280, 720), ColourMatrix::Bt709);
        assert_eq!(ColourMatrix::for_size(960, 720), ColourMatrix::Bt709, "720 lines are HD");
        assert_eq!(ColourMatrix::for_size(640, 480), ColourMatrix::Bt601);
        assert_eq!(ColourMatrix::for_size(1024, 576), ColourMatrix::Bt601, "PAL SD");
    }
}
