//! The plans of `../shared/design/traffic-model.md`: for each persona, the offered rate at every second of a run.
//! A plan is a total rate curve (full scale, requests per second) times `scale`, split over the personas by the
//! model's mix, with the surge multiplying some personas only.

/// Who sends a request, and what it does (traffic-model.md, "Personas and mix").
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Persona {
    ShowCode,
    ReadStatus,
    SignIn,
    Declare,
    VerifyCode,
    VerifyIdCard,
    CheckIn,
    ImportNat,
    /// Anyone opening the public county map (no token): the whole province's JSON, as a first visit fetches it.
    ViewMap,
}

impl Persona {
    pub const ALL: &[Persona] = <Persona as strum::VariantArray>::VARIANTS;

    /// Share of the requests at steady state. Imports are requests of 1,000 rows each. traffic-model.md predates
    /// the public map: its views take 2 points of showing a code (the same people, looking at the map instead).
    pub fn share(self) -> f64 {
        match self {
            Persona::ShowCode => 0.68,
            Persona::ReadStatus => 0.08,
            Persona::SignIn => 0.02,
            Persona::Declare => 0.04,
            Persona::VerifyCode => 0.12,
            Persona::VerifyIdCard => 0.01,
            Persona::CheckIn => 0.02,
            Persona::ImportNat => 0.01,
            Persona::ViewMap => 0.02,
        }
    }

    /// The personas a mass-testing order multiplies: everyone opens their code, and the labs' results pour in.
    pub fn surges(self) -> bool {
        matches!(self, Persona::ShowCode | Persona::ImportNat)
    }

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether a person waits on the answer (a citizen or a gate's guard), as against a lab's system sending a
    /// batch of 1,000 rows, which takes seconds in the best of times and resumes by itself. A person's patience
    /// (5 s) is what the chaos promises hold the first to.
    pub fn a_person_waits(self) -> bool {
        self != Persona::ImportNat
    }

    /// The services its requests go to. (Each also needs the token identity issued, verified from cached keys.)
    pub fn services(self) -> &'static [&'static str] {
        match self {
            Persona::ShowCode => &["rendering"],
            Persona::ReadStatus | Persona::ViewMap => &["scoring"],
            Persona::SignIn => &["identity"],
            Persona::Declare | Persona::ImportNat => &["declaration"],
            // The code a gate scans was shown by rendering; the load's phones fetch a new one now and then.
            Persona::VerifyCode => &["verification", "rendering"],
            Persona::VerifyIdCard | Persona::CheckIn => &["verification"],
        }
    }
}

/// How a client treats a timeout, a 5xx or a 503/429 with `Retry-After`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, strum::EnumString,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case", parse_err_ty = String, parse_err_fn = unknown_clients)]
pub enum Clients {
    /// The hardened page: honours `Retry-After` with jittered backoff, at most 3 tries, and keeps showing its last
    /// valid code meanwhile.
    Page,
    /// A page (or a person pressing refresh) that tries again at once on a timeout or a 5xx, up to 3 times.
    Immediate,
}

fn unknown_clients(other: &str) -> String {
    format!("unknown client behaviour {other:?} (page, immediate)")
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case", parse_err_ty = String, parse_err_fn = unknown_plan)]
pub enum PlanName {
    LaunchDay,
    MassTesting,
    RetryStorm,
    RecolourUnderLoad,
    /// A constant rate: one step of a knee sweep.
    Steady,
}

fn unknown_plan(other: &str) -> String {
    format!(
        "unknown plan {other:?} (launch-day, mass-testing, retry-storm, recolour-under-load, steady)"
    )
}

/// Guangzhou's launch day: 170 million visits in 24 h, 1,970/s on average.
pub const LAUNCH_DAY_MEAN: f64 = 170e6 / 86_400.0;
/// Xi'an's design rate, the city's normal peak that the mass-testing plan starts from.
pub const XIAN_DESIGN_RATE: f64 = 20_000.0;

/// The launch day's curve, relative to the daily mean, by hour of the day (China time): night, the morning peak
/// (07:30-09:30) with its peak minute at 5x the mean, a midday shoulder and the evening peak (19:00-22:00).
/// Linear between the points; `daily_curve` normalises it so that its mean is exactly 1.
const DAY_SHAPE: [(f64, f64); 16] = [
    (0.0, 0.1),
    (5.5, 0.06),
    (7.0, 0.6),
    (7.5, 1.4),
    (8.3, 5.6),
    (8.5, 5.6),
    (9.5, 1.5),
    (11.0, 0.95),
    (12.5, 1.3),
    (14.0, 0.85),
    (18.0, 0.85),
    (19.0, 1.7),
    (20.5, 3.1),
    (22.0, 1.5),
    (23.0, 0.45),
    (24.0, 0.1),
];

fn day_shape_raw(hour: f64) -> f64 {
    let h = hour.clamp(0.0, 24.0);
    for w in DAY_SHAPE.windows(2) {
        let ((h0, v0), (h1, v1)) = (w[0], w[1]);
        if h <= h1 {
            return v0 + (v1 - v0) * (h - h0) / (h1 - h0);
        }
    }
    DAY_SHAPE[DAY_SHAPE.len() - 1].1
}

fn day_shape_mean() -> f64 {
    // Exact for a piecewise-linear curve: trapezoids.
    DAY_SHAPE
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum::<f64>()
        / 24.0
}

/// The launch-day curve relative to the daily mean (mean 1 over the day).
pub fn daily_curve(hour: f64) -> f64 {
    day_shape_raw(hour) / day_shape_mean()
}

/// A plan's timeline, in seconds of the run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub name: PlanName,
    /// Multiplies every full-scale rate.
    pub scale: f64,
    pub duration_s: f64,
    /// Full-scale total rate of the steady or baseline phase (requests per second).
    pub base_rate: f64,
    /// The surge (mass-testing, retry-storm): start, ramp, hold, fall, and the factor on the surging personas.
    pub surge: Option<Surge>,
    /// When the region risk change is sent, if this run sends one.
    pub risk_change_at_s: Option<f64>,
    pub clients: Clients,
    /// Only this persona, at the whole rate.
    #[serde(default)]
    pub only: Option<Persona>,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Surge {
    pub start_s: f64,
    pub ramp_s: f64,
    pub hold_s: f64,
    pub fall_s: f64,
    pub factor: f64,
}

impl Surge {
    /// The surge's multiplier on the surging personas at `t`.
    pub fn multiplier(&self, t: f64) -> f64 {
        let up = self.start_s + self.ramp_s;
        let held = up + self.hold_s;
        let down = held + self.fall_s;
        let extra = self.factor - 1.0;
        if t < self.start_s || t >= down {
            1.0
        } else if t < up {
            1.0 + extra * (t - self.start_s) / self.ramp_s.max(1e-9)
        } else if t < held {
            self.factor
        } else {
            1.0 + extra * (down - t) / self.fall_s.max(1e-9)
        }
    }

    pub fn end_s(&self) -> f64 {
        self.start_s + self.ramp_s + self.hold_s + self.fall_s
    }
}

/// What a run may set besides the plan's name and scale (options of `loadtest run` and the others).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PlanOptions {
    #[arg(long = "duration", value_name = "DURATION")]
    pub duration_s: Option<f64>,
    /// Full-scale rate of a steady run or of the baseline (overrides the plan's).
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long)]
    pub surge_factor: Option<f64>,
    #[arg(long = "surge-hold", value_name = "SURGE_HOLD")]
    pub surge_hold_s: Option<f64>,
    /// page (the hardened page: Retry-After with jittered backoff) or immediate (retries at once, 3 times).
    /// Default: the plan's (retry-storm: immediate), else page for hardened and immediate for naive.
    #[arg(long)]
    pub clients: Option<Clients>,
    #[arg(skip)]
    pub risk_change: Option<bool>,
    /// Only this persona, at the whole rate (the cost of one request type).
    #[arg(skip)]
    pub only: Option<Persona>,
}

impl Plan {
    pub fn new(name: PlanName, scale: f64, o: &PlanOptions) -> Result<Plan, String> {
        if !(scale > 0.0 && scale.is_finite()) {
            return Err("scale must be a positive number".into());
        }
        let d = o.duration_s.unwrap_or(match name {
            PlanName::LaunchDay => 240.0,
            PlanName::MassTesting | PlanName::RetryStorm => 180.0,
            PlanName::RecolourUnderLoad => 120.0,
            PlanName::Steady => 20.0,
        });
        let base_rate = match name {
            PlanName::LaunchDay => o.rate.unwrap_or(LAUNCH_DAY_MEAN),
            PlanName::Steady => o.rate.ok_or("a steady run needs --rate")?,
            _ => o.rate.unwrap_or(XIAN_DESIGN_RATE),
        };
        // Warm up for a fifth of the run, rise within the "two minutes" of the model (compressed), hold, fall
        // back, and leave the last third of the run to show whether the suite recovers.
        let surge = matches!(name, PlanName::MassTesting | PlanName::RetryStorm).then(|| {
            let mut s = Surge {
                start_s: d * 0.2,
                ramp_s: (d * 0.08).max(1.0),
                hold_s: o.surge_hold_s.unwrap_or(d * 0.3),
                fall_s: (d * 0.04).max(1.0),
                factor: o.surge_factor.unwrap_or(10.0),
            };
            if s.end_s() >= d {
                s.hold_s = (d - s.start_s - s.ramp_s - s.fall_s - 1.0).max(1.0);
            }
            s
        });
        let risk_change_at_s = match (o.risk_change, name) {
            (Some(false), _) => None,
            (_, PlanName::LaunchDay) => Some(d * 0.6),
            (Some(true), _) | (_, PlanName::RecolourUnderLoad) => Some(d / 3.0),
            _ => None,
        };
        let plan = Plan {
            name,
            scale,
            duration_s: d,
            base_rate,
            surge,
            risk_change_at_s,
            clients: o.clients.unwrap_or(if name == PlanName::RetryStorm {
                Clients::Immediate
            } else {
                Clients::Page
            }),
            only: o.only,
        };
        if !(plan.duration_s >= 1.0 && plan.duration_s <= 3_600.0) {
            return Err("duration must be between 1 s and an hour".into());
        }
        Ok(plan)
    }

    /// The total rate at `t` before the surge, at this run's scale.
    fn base_at(&self, t: f64) -> f64 {
        let full = match self.name {
            // The run's seconds stand for the day's hours.
            PlanName::LaunchDay => self.base_rate * daily_curve(24.0 * t / self.duration_s),
            _ => self.base_rate,
        };
        full * self.scale
    }

    /// The offered rate of one persona at `t` seconds into the run (requests per second).
    pub fn rate(&self, persona: Persona, t: f64) -> f64 {
        if t < 0.0 || t >= self.duration_s {
            return 0.0;
        }
        let surge = match (&self.surge, persona.surges()) {
            (Some(s), true) => s.multiplier(t),
            _ => 1.0,
        };
        let share = match self.only {
            None => persona.share(),
            Some(only) if only == persona => 1.0,
            Some(_) => 0.0,
        };
        self.base_at(t) * share * surge
    }

    /// The offered rate of all personas at `t`.
    #[cfg(test)]
    pub fn total_rate(&self, t: f64) -> f64 {
        Persona::ALL.iter().map(|p| self.rate(*p, t)).sum()
    }

    /// The highest rate of a persona over the run (sizes its pool of users).
    pub fn peak_rate(&self, persona: Persona) -> f64 {
        let steps = (self.duration_s * 10.0) as usize;
        (0..=steps)
            .map(|i| self.rate(persona, i as f64 / 10.0))
            .fold(0.0, f64::max)
    }

    /// The expected number of requests of a persona over the run (the integral of its rate).
    pub fn expected(&self, persona: Persona) -> f64 {
        let dt = 0.01;
        let steps = (self.duration_s / dt) as usize;
        (0..steps)
            .map(|i| self.rate(persona, (i as f64 + 0.5) * dt) * dt)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_adds_up_to_all_requests() {
        let total: f64 = Persona::ALL.iter().map(|p| p.share()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn the_launch_day_curve_has_mean_one_and_its_peak_minute_at_five_times_the_mean() {
        let minutes: Vec<f64> = (0..1440)
            .map(|m| daily_curve((m as f64 + 0.5) / 60.0))
            .collect();
        let mean = minutes.iter().sum::<f64>() / 1440.0;
        let peak = minutes.iter().copied().fold(0.0, f64::max);
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        assert!((4.8..=5.2).contains(&peak), "peak {peak}");
        // The morning and evening peaks are where the model puts them.
        assert!(daily_curve(8.4) > 4.0 && daily_curve(20.5) > 2.5 && daily_curve(3.0) < 0.2);
    }

    #[test]
    fn launch_day_at_full_scale_peaks_near_ten_thousand_per_second() {
        let plan = Plan::new(PlanName::LaunchDay, 1.0, &PlanOptions::default()).expect("plan");
        let peak = (0..2400)
            .map(|i| plan.total_rate(i as f64 / 10.0))
            .fold(0.0, f64::max);
        assert!((9_500.0..=10_500.0).contains(&peak), "{peak}");
        let mean = (0..2400)
            .map(|i| plan.total_rate(i as f64 / 10.0))
            .sum::<f64>()
            / 2400.0;
        assert!((mean - LAUNCH_DAY_MEAN).abs() < 30.0, "{mean}");
    }

    #[test]
    fn a_mass_testing_surge_multiplies_show_code_and_imports_only() {
        let plan = Plan::new(PlanName::MassTesting, 0.01, &PlanOptions::default()).expect("plan");
        let s = plan.surge.expect("surge");
        let before = 1.0;
        let during = s.start_s + s.ramp_s + s.hold_s / 2.0;
        let after = s.end_s() + 1.0;
        for &p in Persona::ALL {
            let ratio = plan.rate(p, during) / plan.rate(p, before);
            let expected = if p.surges() { 10.0 } else { 1.0 };
            assert!((ratio - expected).abs() < 1e-9, "{p}: {ratio}");
            assert!(
                (plan.rate(p, after) - plan.rate(p, before)).abs() < 1e-9,
                "{p} after"
            );
        }
        // Halfway up the ramp, halfway to the factor.
        let mid = plan.rate(Persona::ShowCode, s.start_s + s.ramp_s / 2.0)
            / plan.rate(Persona::ShowCode, before);
        assert!((mid - 5.5).abs() < 1e-6, "{mid}");
        assert!(s.end_s() < plan.duration_s);
        assert_eq!(plan.clients, Clients::Page);
        let storm = Plan::new(PlanName::RetryStorm, 0.01, &PlanOptions::default()).expect("plan");
        assert_eq!(storm.clients, Clients::Immediate);
    }

    #[test]
    fn a_plan_of_one_persona_offers_it_the_whole_rate_and_nothing_else() {
        let o = PlanOptions {
            rate: Some(100.0),
            duration_s: Some(5.0),
            only: Some(Persona::VerifyCode),
            ..Default::default()
        };
        let plan = Plan::new(PlanName::Steady, 1.0, &o).expect("plan");
        assert_eq!(plan.rate(Persona::VerifyCode, 1.0), 100.0);
        assert_eq!(plan.rate(Persona::ShowCode, 1.0), 0.0);
    }

    #[test]
    fn plans_are_parsed_by_name_and_bad_input_is_refused() {
        assert_eq!("retry-storm".parse::<PlanName>(), Ok(PlanName::RetryStorm));
        assert!("xian".parse::<PlanName>().is_err());
        assert!(Plan::new(PlanName::Steady, 1.0, &PlanOptions::default()).is_err());
        assert!(Plan::new(PlanName::LaunchDay, 0.0, &PlanOptions::default()).is_err());
        let long = PlanOptions {
            duration_s: Some(7_200.0),
            ..Default::default()
        };
        assert!(Plan::new(PlanName::LaunchDay, 1.0, &long).is_err());
    }

    #[test]
    fn the_expected_count_is_the_integral_of_the_rate() {
        let o = PlanOptions {
            rate: Some(1_000.0),
            duration_s: Some(10.0),
            ..Default::default()
        };
        let plan = Plan::new(PlanName::Steady, 0.5, &o).expect("plan");
        assert!((plan.expected(Persona::ShowCode) - 3_400.0).abs() < 1.0);
        assert_eq!(plan.rate(Persona::ShowCode, 10.0), 0.0);
    }
}
