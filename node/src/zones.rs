//! Privacy zones: the parts of a camera's picture (a bed, a window into a ward) that a
//! redacted export fills in (`export::redact`). A zone is a polygon whose corners are in
//! units of 1/10 000 of the picture's width and height (0,0 top left; 10000,10000 bottom
//! right), so one zone fits every resolution a camera sends, and the catalog holds exact
//! integers that every replica compares alike. People write zones in fractions
//! (`0.25,0.25,0.5,0.5`); [`Zone::parse`] and [`Zone`]'s `Display` convert.

use serde::{Deserialize, Serialize};

/// Most corners one zone may have.
pub const ZONE_POINTS_MAX: usize = 32;
/// Most zones one camera (or one export's extra boxes for a camera) may have.
pub const ZONES_PER_CAMERA_MAX: usize = 16;
/// The unit of a corner's coordinates: 1/10 000 of the picture.
pub const SCALE: u16 = 10_000;

/// A privacy zone: a polygon in 1/10 000s of the picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub points: Vec<(u16, u16)>,
}

fn to_units(v: f64) -> u16 {
    (v * SCALE as f64).round().clamp(0.0, SCALE as f64) as u16
}

impl Zone {
    /// A rectangle from its top-left corner and size, in fractions of the picture.
    pub fn rect(x: f64, y: f64, w: f64, h: f64) -> Zone {
        let (x0, y0, x1, y1) = (to_units(x), to_units(y), to_units(x + w), to_units(y + h));
        Zone { points: vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)] }
    }

    /// Reads a zone as people write it: `x,y,w,h` for a rectangle, or `x1,y1 x2,y2 x3,y3 …`
    /// (three or more corners) for a polygon; numbers between 0 and 1.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let bad = |why: &str| {
            format!(
                "privacy zone {s:?}: {why}; write a rectangle as x,y,w,h or a polygon as x1,y1 x2,y2 x3,y3 …, \
                 with numbers between 0 and 1 (0,0 is the picture's top left)"
            )
        };
        let num = |t: &str| match t.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
            Ok(_) => Err(bad(&format!("{t} lies outside the picture (0 to 1)"))),
            Err(_) => Err(bad(&format!("{t:?} is not a number"))),
        };
        let corners: Vec<&str> = s.split_whitespace().collect();
        let zone = if corners.len() == 1 {
            let v = corners[0].split(',').map(num).collect::<Result<Vec<_>, _>>()?;
            match v[..] {
                [x, y, w, h] if w > 0.0 && h > 0.0 && x + w <= 1.0 && y + h <= 1.0 => Zone::rect(x, y, w, h),
                [_, _, w, h] if w > 0.0 && h > 0.0 => return Err(bad("the rectangle runs past the picture's edge")),
                [_, _, _, _] => return Err(bad("width and height must be above 0")),
                _ => return Err(bad("a rectangle has four numbers")),
            }
        } else {
            let points = corners
                .iter()
                .map(|c| match c.split(',').map(num).collect::<Result<Vec<_>, _>>()?[..] {
                    [x, y] => Ok((to_units(x), to_units(y))),
                    _ => Err(bad(&format!("corner {c:?} is not x,y"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Zone { points }
        };
        zone.validate().map_err(|e| bad(&e))?;
        Ok(zone)
    }

    /// Three to [`ZONE_POINTS_MAX`] corners, each inside the picture, enclosing some area.
    pub fn validate(&self) -> Result<(), String> {
        if self.points.len() < 3 || self.points.len() > ZONE_POINTS_MAX {
            return Err(format!("a zone has 3 to {ZONE_POINTS_MAX} corners, not {}", self.points.len()));
        }
        if self.points.iter().any(|&(x, y)| x > SCALE || y > SCALE) {
            return Err("every corner must lie inside the picture (0 to 1)".into());
        }
        // Twice the signed area (shoelace): zero means the corners are on one line.
        let p = &self.points;
        let area2: i64 = (0..p.len())
            .map(|i| {
                let ((x0, y0), (x1, y1)) = (p[i], p[(i + 1) % p.len()]);
                i64::from(x0) * i64::from(y1) - i64::from(x1) * i64::from(y0)
            })
            .sum();
        if area2 == 0 {
            return Err("the corners enclose no area".into());
        }
        Ok(())
    }

    /// Whether the point (fractions of the picture) lies inside (even-odd rule).
    pub fn covers(&self, x: f64, y: f64) -> bool {
        let (x, y) = (x * SCALE as f64, y * SCALE as f64);
        let p: Vec<(f64, f64)> = self.points.iter().map(|&(a, b)| (a as f64, b as f64)).collect();
        let mut inside = false;
        let mut j = p.len() - 1;
        for i in 0..p.len() {
            let ((xi, yi), (xj, yj)) = (p[i], p[j]);
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// Checks a camera's (or an export's) list of zones.
pub fn validate_all(zones: &[Zone]) -> Result<(), String> {
    if zones.len() > ZONES_PER_CAMERA_MAX {
        return Err(format!("at most {ZONES_PER_CAMERA_MAX} privacy zones per camera, not {}", zones.len()));
    }
    zones.iter().try_for_each(Zone::validate)
}

impl std::fmt::Display for Zone {
    /// Corners as fractions, as [`Zone::parse`] reads them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frac = |v: u16| {
            let s = format!("{:.4}", v as f64 / SCALE as f64);
            let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
            if s.is_empty() {
                "0".to_string()
            } else {
                s
            }
        };
        let corners: Vec<String> = self.points.iter().map(|&(x, y)| format!("{},{}", frac(x), frac(y))).collect();
        write!(f, "{}", corners.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_cover_and_refuse_nonsense() {
        let r = Zone::parse("0.25,0.25,0.5,0.5").unwrap();
        assert!(r.covers(0.5, 0.5) && !r.covers(0.1, 0.5) && !r.covers(0.5, 0.8));
        let tri = Zone::parse("0,0 1,0 0,1").unwrap();
        assert!(tri.covers(0.2, 0.2) && !tri.covers(0.8, 0.8));
        assert_eq!(Zone::parse(&tri.to_string()).unwrap(), tri, "a zone prints as it parses");
        for bad in ["", "0.1,0.1,0.5", "0,0 1,1", "0.5,0.5,0,0.2", "0,0,2,1", "a,b,c,d", "0,0 1,0 1"] {
            let e = Zone::parse(bad).unwrap_err();
            assert!(e.contains("privacy zone"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn zones_are_exact_integers_and_degenerate_ones_are_refused() {
        assert_eq!(
            Zone::parse("0.25,0.5,0.5,0.25").unwrap().points,
            vec![(2500, 5000), (7500, 5000), (7500, 7500), (2500, 7500)]
        );
        assert!(Zone::parse("0,0 0.5,0.5 1,1").unwrap_err().contains("no area"));
        assert!(Zone::parse("0.5,0.5,0.6,0.2").unwrap_err().contains("past the picture's edge"));
        assert!(validate_all(&vec![Zone::rect(0.0, 0.0, 0.1, 0.1); 17]).is_err());
        assert_eq!(Zone::rect(0.0, 0.0, 1.0, 1.0).to_string(), "0,0 1,0 1,1 0,1");
    }
}
