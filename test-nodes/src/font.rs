//! A tiny built-in 3x5 bitmap font (digits and a few symbols) for stamping frame numbers and
//! times into test frames.

use crate::canvas::{Canvas, Rgb};

/// Glyph width in font pixels.
const GLYPH_WIDTH: usize = 3;
/// Glyph height in font pixels.
const GLYPH_HEIGHT: usize = 5;
/// Horizontal distance between glyph origins, in font pixels (one column of spacing).
pub const ADVANCE: usize = GLYPH_WIDTH + 1;
/// Vertical distance between text lines, in font pixels (one row of spacing).
pub const LINE_HEIGHT: usize = GLYPH_HEIGHT + 1;

/// The rows of a glyph, top to bottom; bit 2 is the left column, bit 0 the right one.
/// Characters without a glyph draw as blanks.
fn glyph(character: char) -> [u8; GLYPH_HEIGHT] {
    match character {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b001, 0b001, 0b001],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        '#' => [0b101, 0b111, 0b101, 0b111, 0b101],
        's' => [0b011, 0b100, 0b010, 0b001, 0b110],
        _ => [0; GLYPH_HEIGHT],
    }
}

/// Draws one line of `text` with its top-left corner at (`x`, `y`), each font pixel a
/// `scale` x `scale` square, on a `background` box with a one-font-pixel border. Clipped to the
/// canvas.
pub fn draw_text(
    canvas: &mut Canvas,
    (x, y): (usize, usize),
    scale: usize,
    text: &str,
    foreground: Rgb,
    background: Rgb,
) {
    let columns = text.chars().count() * ADVANCE + 1;
    let box_x = x.saturating_sub(scale);
    let box_y = y.saturating_sub(scale);
    canvas.fill_rect(box_x, box_y, columns * scale, (LINE_HEIGHT + 1) * scale, background);
    for (index, character) in text.chars().enumerate() {
        let glyph_x = x + index * ADVANCE * scale;
        draw_glyph(canvas, (glyph_x, y), scale, glyph(character), foreground);
    }
}

/// Draws the set bits of one glyph.
fn draw_glyph(canvas: &mut Canvas, (x, y): (usize, usize), scale: usize, rows: [u8; GLYPH_HEIGHT], colour: Rgb) {
    for (row, bits) in rows.into_iter().enumerate() {
        for column in 0..GLYPH_WIDTH {
            if bits & (0b100 >> column) != 0 {
                let (px, py) = (x + column * scale, y + row * scale);
                canvas.fill_rect(px, py, scale, scale, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::{BLACK, WHITE};

    #[test]
    fn digit_one_lights_its_stem_at_scale_two() {
        let mut canvas = Canvas::new(20, 20);
        draw_text(&mut canvas, (2, 2), 2, "1", WHITE, BLACK);
        // Row 0 of '1' is 0b010: the middle column (x = 2 + 2) is lit, the left one is not.
        assert_eq!(canvas.pixel(4, 2), WHITE);
        assert_eq!(canvas.pixel(5, 3), WHITE);
        assert_eq!(canvas.pixel(2, 2), BLACK);
    }

    #[test]
    fn text_running_off_the_canvas_is_clipped() {
        let mut canvas = Canvas::new(8, 4);
        draw_text(&mut canvas, (6, 2), 3, "#0123456789.:s", WHITE, BLACK);
    }
}
