//! The personas as goose scenarios. Every user of a persona takes arrivals from the persona's schedule, sends at
//! the intended time, behaves on failure as the run's clients do (the hardened page's jittered backoff, or
//! immediate retries), checks the answer, not only the status, and records the outcome with its latency from
//! the intended send time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use goose::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::plan::{Clients, Persona, Plan};
use crate::population::{self, Group, Population, RISK_REGION};
use crate::schedule::{Schedule, Ticket, backoff_s};
use crate::stats::{Outcome, Recorder};
use crate::suite::url;

/// Retries of a client that retries at once (traffic-model.md: up to 3 times).
const IMMEDIATE_RETRIES: u32 = 3;
/// Tries of the hardened page before it gives up and keeps showing its last code.
const PAGE_TRIES: u32 = 3;
/// Codes kept for the checkpoints to scan; refreshed before they expire (a code lives 5 minutes).
const CODE_POOL: usize = 1_000;
const CODE_REFRESH: Duration = Duration::from_secs(120);

/// Everything the users of one run share.
pub struct RunContext {
    pub plan: Plan,
    pub start: Instant,
    /// `start` on the wall clock (imported test results are dated from it).
    pub start_utc: chrono::DateTime<chrono::Utc>,
    pub patience: Duration,
    pub schedules: BTreeMap<Persona, Schedule>,
    pub recorder: Recorder,
    pub population: Arc<Population>,
    pub device_token: String,
    pub lab_token: String,
    pub risk_token: String,
    pub redis: redis::aio::ConnectionManager,
    pub redis_prefix: String,
    codes: Vec<Mutex<Option<(String, Instant)>>>,
    rng: Mutex<StdRng>,
    /// When the region risk change was accepted (202), if it was.
    pub risk_changed: OnceLock<Instant>,
    risk_sent: AtomicBool,
    pub import_rows: AtomicU64,
    /// Answers that were wrong, by persona and what was seen (first few), for the run's log.
    pub wrong: Mutex<Vec<String>>,
    /// The writes the suite acknowledged, for the accounting after a chaos run.
    pub ledger: Mutex<crate::accounting::Ledger>,
    /// Names this run's idempotency keys: one key per arrival, kept across its retries.
    run_id: String,
}

static CURRENT: RwLock<Option<Arc<RunContext>>> = RwLock::new(None);

pub fn install(ctx: Arc<RunContext>) {
    if let Ok(mut c) = CURRENT.write() {
        *c = Some(ctx);
    }
}

fn ctx() -> Option<Arc<RunContext>> {
    CURRENT.read().ok().and_then(|c| c.clone())
}

impl RunContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: Plan,
        start: Instant,
        patience: Duration,
        seed: u64,
        population: Arc<Population>,
        tokens: (String, String, String),
        redis: redis::aio::ConnectionManager,
        redis_prefix: String,
    ) -> RunContext {
        let schedules = Persona::ALL
            .iter()
            .map(|p| (*p, Schedule::draw(&plan, *p, seed)))
            .collect();
        let recorder = Recorder::new(plan.duration_s.ceil() as usize);
        RunContext {
            schedules,
            recorder,
            start_utc: chrono::Utc::now()
                + chrono::Duration::from_std(start.saturating_duration_since(Instant::now()))
                    .unwrap_or_default(),
            start,
            patience,
            codes: (0..CODE_POOL.min(population.len()))
                .map(|_| Mutex::new(None))
                .collect(),
            population,
            device_token: tokens.0,
            lab_token: tokens.1,
            risk_token: tokens.2,
            redis,
            redis_prefix,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            risk_changed: OnceLock::new(),
            risk_sent: AtomicBool::new(false),
            import_rows: AtomicU64::new(0),
            wrong: Mutex::new(Vec::new()),
            ledger: Mutex::new(Default::default()),
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            plan,
        }
    }

    pub fn end(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.plan.duration_s) + self.patience
    }

    fn risk_changed(&self) -> bool {
        self.risk_changed.get().is_some()
    }

    fn person(&self) -> usize {
        self.rng
            .lock()
            .map(|mut r| r.random_range(0..self.population.len()))
            .unwrap_or(0)
    }

    /// The arrival's idempotency key: its retries send the same, as a client that lost an answer should.
    fn idempotency_key(&self, persona: Persona, ticket: Ticket) -> String {
        format!("load-{}-{persona}-{}", self.run_id, ticket.seq)
    }

    fn acknowledged(&self, write: impl FnOnce(&mut crate::accounting::Ledger)) {
        if let Ok(mut ledger) = self.ledger.lock() {
            write(&mut ledger);
        }
    }

    fn note_wrong(&self, persona: Persona, what: String) {
        if let Ok(mut w) = self.wrong.lock()
            && w.len() < 50
        {
            w.push(format!("{persona}: {what}"));
        }
    }
}

/// One try's result.
enum Try {
    Ok,
    Wrong(String),
    /// 503 or 429, with the server's Retry-After.
    Shed(Option<f64>),
    ServerError,
    Timeout,
    /// A 4xx a right request never gets, or a connection error.
    ClientError(String),
}

/// A goose scenario per persona, with as many users as its peak rate needs to keep its arrivals open while
/// requests take up to `in_flight_s` each.
pub fn scenarios(plan: &Plan, in_flight_s: f64, max_users: usize) -> Vec<(Persona, usize)> {
    let wanted: Vec<(Persona, f64)> = Persona::ALL
        .iter()
        .map(|p| (*p, (plan.peak_rate(*p) * in_flight_s).ceil().max(2.0)))
        .collect();
    let total: f64 = wanted.iter().map(|(_, n)| n).sum();
    let squeeze = if total > max_users as f64 {
        max_users as f64 / total
    } else {
        1.0
    };
    wanted
        .into_iter()
        .map(|(p, n)| (p, ((n * squeeze).ceil() as usize).max(2)))
        .collect()
}

pub fn scenario(persona: Persona, users: usize) -> Result<Scenario, GooseError> {
    // What goose's `transaction!` expands to, with the persona captured.
    let t = Transaction::new(Arc::new(move |user| Box::pin(persona_loop(user, persona))));
    Scenario::new(persona.name())
        .set_weight(users)
        .map(|s| s.register_transaction(t.set_name(persona.name())))
}

/// The region risk change, once per run at the plan's time (a scenario of one user).
pub fn risk_scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("risk-change")
        .set_weight(1)?
        .register_transaction(transaction!(risk_change)))
}

/// Nothing left to send: wait for the run's end (goose stops a user between two calls of its transaction).
async fn idle_until_end(ctx: &RunContext) {
    let end = ctx.end();
    if Instant::now() < end {
        tokio::time::sleep_until(end.into()).await;
    } else {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes this persona's arrivals until the schedule runs out, then idles until the run ends (goose loops the
/// transaction: each call handles one arrival).
async fn persona_loop(user: &mut GooseUser, persona: Persona) -> TransactionResult {
    let Some(ctx) = ctx() else { return Ok(()) };
    let Some(ticket) = ctx.schedules.get(&persona).and_then(Schedule::take) else {
        idle_until_end(&ctx).await;
        return Ok(());
    };
    arrive(user, &ctx, persona, ticket).await;
    Ok(())
}

async fn arrive(user: &mut GooseUser, ctx: &RunContext, persona: Persona, ticket: Ticket) {
    let intended = ctx.start + Duration::from_secs_f64(ticket.at_s);
    let now = Instant::now();
    if now < intended {
        tokio::time::sleep_until(intended.into()).await;
    } else if now - intended > ctx.patience {
        // Every user of this persona was busy past the citizen's patience: the request was offered and failed.
        ctx.recorder
            .record(persona, ticket.at_s, 0, Outcome::Late, 0);
        return;
    }
    let person = ctx.person();
    let mut tries = 0;
    let outcome = loop {
        tries += 1;
        let (Ok(result) | Err(result)) = attempt(user, ctx, persona, person, ticket).await;
        let elapsed = intended.elapsed();
        let again = match (&result, ctx.plan.clients) {
            (Try::Shed(_) | Try::ServerError | Try::Timeout, Clients::Immediate) => {
                tries <= IMMEDIATE_RETRIES
            }
            (Try::Shed(retry_after), Clients::Page) if tries < PAGE_TRIES => {
                let wait = Duration::from_secs_f64(backoff_s(*retry_after, &ctx.rng));
                if elapsed + wait < ctx.patience * 3 {
                    tokio::time::sleep(wait).await;
                    true
                } else {
                    false
                }
            }
            (Try::ServerError | Try::Timeout, Clients::Page) if tries < PAGE_TRIES => {
                let wait = Duration::from_secs_f64(backoff_s(None, &ctx.rng));
                tokio::time::sleep(wait).await;
                true
            }
            _ => false,
        };
        if !again {
            break match result {
                Try::Ok => Outcome::Ok,
                Try::Wrong(what) => {
                    ctx.note_wrong(persona, what);
                    Outcome::Wrong
                }
                Try::Shed(_) => Outcome::Shed,
                Try::ServerError => Outcome::Error,
                Try::Timeout => Outcome::Timeout,
                Try::ClientError(what) => {
                    ctx.note_wrong(persona, what);
                    Outcome::Error
                }
            };
        }
    };
    let latency_us = intended.elapsed().as_micros() as u64;
    ctx.recorder
        .record(persona, ticket.at_s, latency_us, outcome, tries);
}

/// A request through goose (so that its own metrics and reports count it too), its status and body.
async fn send(
    user: &mut GooseUser,
    name: &str,
    method: GooseMethod,
    rb: reqwest::RequestBuilder,
) -> Result<(u16, Option<f64>, String), Try> {
    let req = GooseRequest::builder()
        .method(method)
        .name(name)
        .set_request_builder(rb)
        .build();
    let goose = user
        .request(req)
        .await
        .map_err(|e| Try::ClientError(format!("{name}: {e}")))?;
    match goose.response {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok());
            let body = resp.text().await.map_err(|e| classify(&e))?;
            Ok((status, retry_after, body))
        }
        Err(e) => Err(classify(&e)),
    }
}

/// Right, or wrong as `what` says.
fn right_if(ok: bool, what: impl FnOnce() -> String) -> Try {
    if ok { Try::Ok } else { Try::Wrong(what()) }
}

fn classify(e: &reqwest::Error) -> Try {
    if e.is_timeout() {
        Try::Timeout
    } else {
        Try::ServerError
    }
}

/// What a status other than the expected one means.
fn unexpected(status: u16, retry_after: Option<f64>, body: &str) -> Try {
    match status {
        429 | 503 => Try::Shed(retry_after),
        // The same request still being done by an earlier try (a check-in's key, an import's batch): come back
        // when told, as from a shed request, for the outcome.
        409 if retry_after.is_some() => Try::Shed(retry_after),
        500..=599 => Try::ServerError,
        _ => Try::ClientError(format!(
            "status {status}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
}

fn json_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Sends a request and reads its answer as JSON when it has the status `want`; any other status is what
/// [`unexpected`] makes of it.
async fn expect(
    user: &mut GooseUser,
    name: &str,
    method: GooseMethod,
    rb: reqwest::RequestBuilder,
    want: u16,
) -> Result<Value, Try> {
    let (status, ra, body) = send(user, name, method, rb).await?;
    if status != want {
        return Err(unexpected(status, ra, &body));
    }
    Ok(json_body(&body))
}

async fn attempt(
    user: &mut GooseUser,
    ctx: &RunContext,
    persona: Persona,
    i: usize,
    ticket: Ticket,
) -> Result<Try, Try> {
    let pop = &ctx.population;
    let group = Group::of(i);
    let changed = ctx.risk_changed();
    let client = user.client.clone();
    let check_colour = |colour: &str| {
        right_if(group.accepts(colour, changed), || {
            format!("person {i} ({group:?}) got {colour}")
        })
    };
    Ok(match persona {
        Persona::ShowCode => {
            let rb = client
                .get(format!("{}/v1/codes/me?format=payload", url("rendering")))
                .bearer_auth(pop.token(i));
            let v = expect(user, "show code", GooseMethod::Get, rb, 200).await?;
            let code = v["code"].as_str().unwrap_or("");
            if !code.starts_with("HCQ1:") {
                return Err(Try::Wrong(format!(
                    "code without HCQ1: prefix for person {i}"
                )));
            }
            if v["stale"] == true {
                let at = ctx.start.elapsed().as_secs();
                ctx.acknowledged(|l| l.stale_codes_at_s.push(at));
            }
            check_colour(v["colour"].as_str().unwrap_or(""))
        }
        Persona::ReadStatus => {
            let rb = client
                .get(format!("{}/v1/status/me", url("scoring")))
                .bearer_auth(pop.token(i));
            let v = expect(user, "read status", GooseMethod::Get, rb, 200).await?;
            check_colour(v["colour"].as_str().unwrap_or(""))
        }
        Persona::SignIn => {
            let phone = population::phone(i);
            let rb = client
                .post(format!("{}/v1/auth/otp", url("identity")))
                .json(&json!({"phone": phone}));
            expect(user, "request one-time code", GooseMethod::Post, rb, 202).await?;
            let code = population::dev_code(&mut ctx.redis.clone(), &ctx.redis_prefix, &phone)
                .await
                .map_err(|e| Try::ClientError(format!("reading the one-time code: {e}")))?;
            let Some(code) = code else {
                return Err(Try::Wrong(format!("no one-time code sent to person {i}")));
            };
            let rb = client
                .post(format!("{}/v1/auth/token", url("identity")))
                .json(&json!({"grant_type": "otp", "phone": phone, "code": code}));
            let v = expect(user, "sign in", GooseMethod::Post, rb, 200).await?;
            let token = v["access_token"].as_str().is_some_and(|t| !t.is_empty());
            right_if(token && v["scope"] == "citizen", || {
                format!("sign-in answer without a citizen token for person {i}")
            })
        }
        Persona::Declare => {
            let rb = client
                .post(format!("{}/v1/declarations", url("declaration")))
                .bearer_auth(pop.token(i))
                .header("Idempotency-Key", ctx.idempotency_key(persona, ticket))
                .json(&population::declaration());
            let v = expect(user, "declare", GooseMethod::Post, rb, 201).await?;
            ctx.acknowledged(|l| l.declarations.extend(uuid_in(&v, "id")));
            right_if(
                v["id"].as_str().is_some() && v["current_region"] == population::HOME,
                || "declaration answer without its id and region".into(),
            )
        }
        Persona::VerifyCode | Persona::VerifyIdCard => {
            let (name, body, holder) = if persona == Persona::VerifyCode {
                let (code, holder) = fresh_code(user, ctx, i % ctx.codes.len().max(1)).await?;
                ("verify code", json!({"code": code}), holder)
            } else {
                let id_number = population::id_number(i);
                ("verify id card", json!({"id_number": id_number}), i)
            };
            let rb = client
                .post(format!("{}/v1/verify", url("verification")))
                .bearer_auth(&ctx.device_token)
                .json(&body);
            let v = expect(user, name, GooseMethod::Post, rb, 200).await?;
            ctx.acknowledged(|l| l.scans.extend(uuid_in(&v, "scan_id")));
            if persona == Persona::VerifyIdCard {
                if v["masked_name"].as_str() != Some("压*") {
                    return Ok(Try::Wrong(format!(
                        "ID-card verify of person {i} without the masked name"
                    )));
                }
                // The gate could not judge: no status could be read (Redis back empty, before scoring has written
                // the documents again). Not a wrong answer but a failed check: the operator asks for the person's
                // code.
                if v["reason"] == "no_status" {
                    return Ok(Try::ServerError);
                }
            }
            judge(&v, holder, Group::of(holder), changed)
        }
        Persona::ViewMap => {
            let rb = client.get(format!(
                "{}/v1/map?province={}",
                url("scoring"),
                population::PROVINCE
            ));
            let v = expect(user, "view map", GooseMethod::Get, rb, 200).await?;
            let counties = v["counties"].as_array().map_or(0, Vec::len);
            right_if(
                v["province"] == population::PROVINCE && counties > 100,
                || format!("the map of {} with {counties} counties", v["province"]),
            )
        }
        Persona::CheckIn => {
            let rb = client
                .post(format!("{}/v1/checkins", url("verification")))
                .bearer_auth(pop.token(i))
                .header("Idempotency-Key", ctx.idempotency_key(persona, ticket))
                .json(&json!({"venue_code": pop.venue_code}));
            let v = expect(user, "check in", GooseMethod::Post, rb, 201).await?;
            ctx.acknowledged(|l| l.checkins.extend(uuid_in(&v, "id")));
            right_if(v["venue"] == population::VENUE, || {
                "check-in answer names another venue".into()
            })
        }
        Persona::ImportNat => {
            let rows = crate::accounting::IMPORT_ROWS;
            // One batch per arrival, the same rows on every try: a try after a failure resumes the batch after its
            // last committed chunk, as a lab's resend does.
            let lab = ctx.idempotency_key(persona, ticket);
            let mut draw = StdRng::seed_from_u64(ticket.seq as u64);
            let sampled =
                ctx.start_utc + chrono::Duration::milliseconds((ticket.at_s * 1000.0) as i64);
            let body: String = (0..rows)
                .map(|r| {
                    let person = draw.random_range(0..pop.len());
                    format!(
                        "{}\n",
                        json!({"id_number": population::id_number(person), "result": "negative", "lab": lab,
                               "sample_time": sampled - chrono::Duration::seconds(r as i64)})
                    )
                })
                .collect();
            let rb = client
                .post(format!("{}/v1/imports/nat-results", url("declaration")))
                .bearer_auth(&ctx.lab_token)
                .header("Idempotency-Key", lab.clone())
                .header("Content-Type", "application/x-ndjson")
                .body(body);
            // 200: the batch was complete already (a try whose answer was lost).
            let (status, ra, answer) =
                send(user, "import NAT results", GooseMethod::Post, rb).await?;
            if status != 201 && status != 200 {
                return Err(unexpected(status, ra, &answer));
            }
            let v = json_body(&answer);
            if v["accepted"] == rows && v["rejected"] == 0 && v["state"] == "complete" {
                ctx.import_rows.fetch_add(rows, Ordering::Relaxed);
                ctx.acknowledged(|l| l.import_labs.push(lab.clone()));
                Try::Ok
            } else {
                Try::Wrong(format!(
                    "import counts: accepted {}, rejected {}",
                    v["accepted"], v["rejected"]
                ))
            }
        }
    })
}

fn uuid_in(v: &Value, field: &str) -> Option<uuid::Uuid> {
    v[field].as_str().and_then(|s| s.parse().ok())
}

/// The gate's decision against what the holder must get: the venue admits green only.
fn judge(v: &Value, holder: usize, group: Group, changed: bool) -> Try {
    let colour = v["colour"].as_str().unwrap_or("");
    let decision = v["decision"].as_str().unwrap_or("");
    let right_decision = if colour == "green" { "pass" } else { "deny" };
    right_if(
        group.accepts(colour, changed) && decision == right_decision,
        || format!("person {holder} ({group:?}): {decision} with {colour}"),
    )
}

/// A code from the pool for the checkpoint to scan, fetched again (by its holder, as they show it) when it is
/// older than two minutes. Slot k holds person k's code.
async fn fresh_code(
    user: &mut GooseUser,
    ctx: &RunContext,
    slot: usize,
) -> Result<(String, usize), Try> {
    if let Some(Some((code, at))) = ctx.codes[slot].lock().ok().map(|c| c.clone())
        && at.elapsed() < CODE_REFRESH
    {
        return Ok((code, slot));
    }
    let rb = user
        .client
        .get(format!("{}/v1/codes/me?format=payload", url("rendering")))
        .bearer_auth(ctx.population.token(slot));
    let v = expect(user, "show code (to be scanned)", GooseMethod::Get, rb, 200).await?;
    let code = v["code"].as_str().unwrap_or("").to_owned();
    if let Ok(mut c) = ctx.codes[slot].lock() {
        *c = Some((code.clone(), Instant::now()));
    }
    Ok((code, slot))
}

async fn risk_change(user: &mut GooseUser) -> TransactionResult {
    let Some(ctx) = ctx() else { return Ok(()) };
    let Some(at) = ctx.plan.risk_change_at_s else {
        idle_until_end(&ctx).await;
        return Ok(());
    };
    if ctx.risk_sent.swap(true, Ordering::SeqCst) {
        idle_until_end(&ctx).await;
        return Ok(());
    }
    tokio::time::sleep_until((ctx.start + Duration::from_secs_f64(at)).into()).await;
    let rb = user
        .client
        .put(format!("{}/v1/regions/{RISK_REGION}/risk", url("scoring")))
        .bearer_auth(&ctx.risk_token)
        .json(&json!({"level": "high"}));
    // The change is an official's order: retried until it is accepted.
    for _ in 0..20 {
        if let Ok((202, _, _)) = send(
            user,
            "region risk change",
            GooseMethod::Put,
            rb.try_clone().ok_or("clone")?,
        )
        .await
        {
            let _ = ctx.risk_changed.set(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Time from the risk change until every affected citizen's code shows red, asked of rendering as their phones
/// would, while the load goes on (sweeps over the affected people until one finds them all red).
pub async fn recolour_sweep(ctx: Arc<RunContext>) -> Option<RecolourResult> {
    let changed_at = loop {
        if let Some(at) = ctx.risk_changed.get() {
            break *at;
        }
        if Instant::now() > ctx.end() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let affected: Vec<usize> = (0..ctx.population.len())
        .filter(|&i| Group::of(i) == Group::Visitor)
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let mut pending = affected.clone();
    let mut sweeps = 0;
    while !pending.is_empty() && Instant::now() < ctx.end() + Duration::from_secs(120) {
        sweeps += 1;
        let checks = futures_util::stream::iter(pending.clone())
            .map(|i| {
                let (http, ctx) = (&http, &ctx);
                async move {
                    let r = http
                        .get(format!("{}/v1/codes/me?format=payload", url("rendering")))
                        .bearer_auth(ctx.population.token(i))
                        .send()
                        .await
                        .ok()?;
                    let v: Value = r.json().await.ok()?;
                    (v["colour"] == "red").then_some(i)
                }
            })
            .buffer_unordered(16);
        use futures_util::StreamExt;
        let red: Vec<usize> = checks.filter_map(|x| async move { x }).collect().await;
        pending.retain(|i| !red.contains(i));
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Some(RecolourResult {
        affected: affected.len(),
        still_not_red: pending.len(),
        all_red_after_s: pending
            .is_empty()
            .then(|| changed_at.elapsed().as_secs_f64()),
        sweeps,
    })
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RecolourResult {
    pub affected: usize,
    pub still_not_red: usize,
    pub all_red_after_s: Option<f64>,
    pub sweeps: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanName, PlanOptions};

    #[test]
    fn every_persona_gets_users_in_proportion_to_its_peak_within_the_cap() {
        let o = PlanOptions {
            rate: Some(10_000.0),
            duration_s: Some(10.0),
            ..Default::default()
        };
        let plan = Plan::new(PlanName::Steady, 0.1, &o).expect("plan");
        let users = scenarios(&plan, 0.5, 10_000);
        let show = users
            .iter()
            .find(|(p, _)| *p == Persona::ShowCode)
            .map(|(_, n)| *n);
        assert_eq!(show, Some(340));
        assert!(users.iter().all(|(_, n)| *n >= 2));
        let capped = scenarios(&plan, 0.5, 100);
        let total: usize = capped.iter().map(|(_, n)| n).sum();
        assert!(total <= 100 + 2 * Persona::ALL.len(), "{total}");
    }

    #[test]
    fn a_gate_must_pass_green_and_turn_the_rest_away() {
        let answer = |decision: &str, colour: &str| json!({"decision": decision, "colour": colour});
        assert!(matches!(
            judge(&answer("pass", "green"), 0, Group::Plain, false),
            Try::Ok
        ));
        assert!(matches!(
            judge(&answer("deny", "green"), 0, Group::Plain, false),
            Try::Wrong(_)
        ));
        assert!(matches!(
            judge(&answer("deny", "yellow"), 3, Group::CloseContact, false),
            Try::Ok
        ));
        assert!(matches!(
            judge(&answer("pass", "yellow"), 3, Group::CloseContact, false),
            Try::Wrong(_)
        ));
        assert!(matches!(
            judge(&answer("deny", "red"), 9, Group::Visitor, true),
            Try::Ok
        ));
        assert!(matches!(
            judge(&answer("deny", "red"), 9, Group::Visitor, false),
            Try::Wrong(_)
        ));
    }
}
