//! A code as a QR image: the matrix from the `qrcode` crate (error correction M, the token's alphanumeric mode),
//! drawn in the colour of the status with a four-module quiet zone, as SVG (qrcode's renderer) or as a two-colour
//! indexed PNG (pixels laid out here, compressed by the `png` crate).

use hc_domain::Colour;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Dark enough on white for scanners, and still the colour people know.
pub fn ink(colour: Colour) -> (&'static str, [u8; 3]) {
    match colour {
        Colour::Green => ("#0a8f3c", [0x0a, 0x8f, 0x3c]),
        Colour::Yellow => ("#b38600", [0xb3, 0x86, 0x00]),
        Colour::Orange => ("#d35400", [0xd3, 0x54, 0x00]),
        Colour::Red => ("#c0161b", [0xc0, 0x16, 0x1b]),
    }
}

const QUIET: usize = 4;

fn matrix(code: &str) -> anyhow::Result<QrCode> {
    Ok(QrCode::with_error_correction_level(
        code.as_bytes(),
        EcLevel::M,
    )?)
}

pub fn svg(code: &str, colour: Colour) -> anyhow::Result<String> {
    let qr = matrix(code)?;
    Ok(qr
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(240, 240)
        .dark_color(svg::Color(ink(colour).0))
        .light_color(svg::Color("#ffffff"))
        .build())
}

pub fn png(code: &str, colour: Colour, module_px: u32) -> anyhow::Result<Vec<u8>> {
    let qr = matrix(code)?;
    let modules = qr.width();
    let dark = qr.to_colors();
    let scale = module_px as usize;
    let side = (modules + 2 * QUIET) * scale;
    // One bit per pixel, rows padded to whole bytes; palette index 1 is the ink.
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0u8; row_bytes * side];
    for y in 0..side {
        let my = (y / scale).checked_sub(QUIET).filter(|m| *m < modules);
        for x in 0..side {
            let mx = (x / scale).checked_sub(QUIET).filter(|m| *m < modules);
            if let (Some(mx), Some(my)) = (mx, my)
                && dark[my * modules + mx] == qrcode::Color::Dark
            {
                pixels[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let mut out = Vec::with_capacity(2048);
    {
        let side = u32::try_from(side)?;
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::One);
        let [r, g, b] = ink(colour).1;
        encoder.set_palette(vec![0xff, 0xff, 0xff, r, g, b]);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}
