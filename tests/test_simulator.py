"""The market simulator: deterministic, chunk-invariant, warehouse-shaped, and eventful."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from adapters.simulator import MINUTES_PER_DAY, REGIMES, MarketSimulator
from core.calendar import market_calendar
from core.config import DEFAULT_WATCHLIST, is_crypto
from warehouse.connection import Warehouse
from warehouse.load import upsert
from warehouse.migrate import migrate
from warehouse.read import table_row_counts
from warehouse.tables import FEED_TABLES

EPOCH = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, the default SimConfig.start
DEFAULT_END = EPOCH + timedelta(days=3)
LONG_END = EPOCH + timedelta(days=70)
SEED = 42
RISK_OFF = ("HIGH_VOL", "CRASH")
DUCKDB_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(),
    "DOUBLE": pl.Float64(),
    "BIGINT": pl.Int64(),
    "SMALLINT": pl.Int16(),
    "BOOLEAN": pl.Boolean(),
    "DATE": pl.Date(),
    "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
    "VARCHAR[]": pl.List(pl.String()),
}


@pytest.fixture(scope="module")
def sim() -> MarketSimulator:
    return MarketSimulator(seed=SEED, epoch=EPOCH)


@pytest.fixture(scope="module")
def frames(sim: MarketSimulator) -> dict[str, pl.DataFrame]:
    return sim.generate(EPOCH, DEFAULT_END)


@pytest.fixture(scope="module")
def long_frames(sim: MarketSimulator) -> dict[str, pl.DataFrame]:
    return sim.generate(EPOCH, LONG_END)


@pytest.fixture(scope="module")
def long_regimes(sim: MarketSimulator) -> pl.DataFrame:
    return sim.regime_path(EPOCH, LONG_END)


def minutes(bars: pl.DataFrame) -> pl.DataFrame:
    return bars.filter(pl.col("timeframe") == "1Min")


def dailies(bars: pl.DataFrame) -> pl.DataFrame:
    return bars.filter(pl.col("timeframe") == "1Day")


def closes(bars: pl.DataFrame, symbol: str) -> pl.DataFrame:
    return minutes(bars).filter(pl.col("symbol") == symbol).select("ts_event", "open", "close").sort("ts_event")


def price_before(bars: pl.DataFrame, symbol: str, moment: datetime) -> float:
    """The last close before `moment`, or the first open after it if nothing traded before."""
    rows = closes(bars, symbol)
    before = rows.filter(pl.col("ts_event") < moment)
    return float(before["close"][-1] if before.height else rows.filter(pl.col("ts_event") >= moment)["open"][0])


def session_close(bars: pl.DataFrame, symbol: str, after: datetime, sessions: int) -> float:
    """The close of the `sessions`-th session that trades at or after `after`."""
    rows = closes(bars, symbol).filter(pl.col("ts_event") >= after)
    dates = rows["ts_event"].dt.convert_time_zone("America/New_York").dt.date()
    day = dates.unique(maintain_order=True)[sessions - 1]
    return float(rows.filter(dates == day)["close"][-1])


def minute_returns(bars: pl.DataFrame) -> pl.DataFrame:
    """One column of log returns per symbol, one row per minute where SPY traded."""
    returns = minutes(bars).select("ts_event", "symbol", (pl.col("close") / pl.col("open")).log().alias("r"))
    return returns.pivot(on="symbol", index="ts_event", values="r").drop_nulls("SPY").sort("ts_event")


def correlation(frame: pl.DataFrame, a: str, b: str) -> float:
    return float(np.corrcoef(frame[a].to_numpy(), frame[b].to_numpy())[0, 1])


# --- determinism and chunking ---------------------------------------------------------------


def test_same_seed_gives_identical_frames(frames: dict[str, pl.DataFrame]) -> None:
    again = MarketSimulator(seed=SEED, epoch=EPOCH).generate(EPOCH, DEFAULT_END)
    for table, frame in frames.items():
        assert_frame_equal(again[table], frame)


def test_another_seed_gives_another_market(frames: dict[str, pl.DataFrame], sim: MarketSimulator) -> None:
    other = MarketSimulator(seed=SEED + 1, epoch=EPOCH)
    other_frames = other.generate(EPOCH, DEFAULT_END)
    assert other_frames["bars"].height == frames["bars"].height
    assert not other_frames["bars"]["close"].equals(frames["bars"]["close"])
    assert not other_frames["funding_rates"]["funding_rate"].equals(frames["funding_rates"]["funding_rate"])
    assert not other.regime_path(EPOCH, DEFAULT_END).equals(sim.regime_path(EPOCH, DEFAULT_END))


def test_uneven_chunks_equal_one_call() -> None:
    start, end = EPOCH, DEFAULT_END
    whole = MarketSimulator(seed=SEED, epoch=EPOCH).generate(start, end)
    cuts = [
        start,
        start + timedelta(hours=14, minutes=31),  # 09:31 New York: inside the session
        start + timedelta(hours=14, minutes=32),  # a single minute
        start + timedelta(hours=19, minutes=59, seconds=30),  # mid-minute, mid-session
        start + timedelta(days=1),  # midnight
        start + timedelta(days=1, hours=7, minutes=13),
        start + timedelta(days=2, hours=16),  # mid-session again, the next day
        end,
    ]
    chunked = MarketSimulator(seed=SEED, epoch=EPOCH)
    # Later chunks first: a cold cache must not change what an earlier day holds.
    parts = [chunked.generate(a, b) for a, b in reversed(list(pairwise(cuts)))][::-1]
    for table, frame in whole.items():
        assert frame.height > 0, f"{table} is empty, so the comparison would prove nothing"
        assert_frame_equal(pl.concat([part[table] for part in parts]), frame)

    regimes = [chunked.regime_path(a, b) for a, b in pairwise(cuts)]
    assert_frame_equal(pl.concat(regimes), MarketSimulator(seed=SEED, epoch=EPOCH).regime_path(start, end))


def test_a_day_deep_in_history_is_the_same_reached_directly(long_frames: dict[str, pl.DataFrame]) -> None:
    day = EPOCH + timedelta(days=40)
    direct = MarketSimulator(seed=SEED, epoch=EPOCH).generate(day, day + timedelta(days=1))
    for table, frame in direct.items():
        within = long_frames[table].filter(pl.col("ts_event").is_between(day, day + timedelta(days=1), closed="left"))
        assert_frame_equal(frame, within)


def test_asset_paths_do_not_depend_on_the_rest_of_the_watchlist(frames: dict[str, pl.DataFrame]) -> None:
    small = MarketSimulator(seed=SEED, epoch=EPOCH, watchlist=("SPY", "BTC/USD", "NVDA", "SOL/USD"))
    small_frames = small.generate(EPOCH, DEFAULT_END)
    for symbol in ("SPY", "BTC/USD"):
        assert_frame_equal(
            small_frames["bars"].filter(pl.col("symbol") == symbol),
            frames["bars"].filter(pl.col("symbol") == symbol),
        )
    assert set(small_frames["bars"]["symbol"]) == {"SPY", "BTC/USD", "NVDA", "SOL/USD"}
    assert set(small_frames["funding_rates"]["symbol"]) == {"BTCUSDT", "SOLUSDT"}


def test_window_is_clipped_to_the_epoch_and_may_be_empty(sim: MarketSimulator) -> None:
    before = sim.generate(EPOCH - timedelta(days=2), EPOCH + timedelta(hours=1))
    assert minutes(before["bars"])["ts_event"].min() == EPOCH
    assert all((frame["ts_event"] >= EPOCH).all() for table, frame in before.items() if table != "bars")
    # Before the epoch there is only the daily history, whole, in the window that holds the epoch.
    assert_frame_equal(before["bars"].filter(pl.col("ts_event") < EPOCH), sim.daily_history())
    empty = sim.generate(EPOCH + timedelta(hours=5), EPOCH + timedelta(hours=5))
    assert all(frame.is_empty() for frame in empty.values())
    assert empty["bars"].schema == before["bars"].schema
    with pytest.raises(ValueError, match="timezone-aware"):
        sim.generate(datetime(2026, 3, 2), datetime(2026, 3, 3))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        MarketSimulator(seed=1, epoch=datetime(2026, 3, 2))  # noqa: DTZ001
    with pytest.raises(ValueError, match="seed"):
        MarketSimulator(seed=-1, epoch=EPOCH)


def test_economic_calendar_matches_generated_events(sim: MarketSimulator, long_frames: dict[str, pl.DataFrame]) -> None:
    calendar = MarketSimulator(seed=SEED, epoch=EPOCH).economic_calendar(EPOCH, LONG_END)
    assert_frame_equal(calendar, long_frames["economic_events"])


# --- shape -------------------------------------------------------------------------------------


def test_frames_match_the_warehouse_and_load_idempotently(tmp_path: Path, frames: dict[str, pl.DataFrame]) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    migrate(warehouse)
    assert list(frames) == list(FEED_TABLES)
    with warehouse.connect() as con:
        for table, frame in frames.items():
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
            assert frame.columns == [name for name, _ in columns], table
            assert list(frame.dtypes) == [DUCKDB_TYPES[kind] for _, kind in columns], table

    heights = {table: frame.height for table, frame in frames.items()}
    assert all(heights.values()), heights
    # One row per natural key: upsert reports distinct keys, which must equal the rows given.
    assert upsert(warehouse, frames) == heights
    assert {t: n for t, n in table_row_counts(warehouse).items() if t in frames} == heights
    upsert(warehouse, frames)
    assert {t: n for t, n in table_row_counts(warehouse).items() if t in frames} == heights

    with warehouse.connect() as con:
        stored = con.sql("SELECT * FROM headlines ORDER BY ts_event, item_id").pl()
    assert_frame_equal(stored, frames["headlines"].sort("ts_event", "item_id"))


def test_every_row_carries_sim_source_and_a_publication_time(frames: dict[str, pl.DataFrame]) -> None:
    for table, frame in frames.items():
        for column in ("source", "venue"):
            if column in frame.columns:
                assert set(frame[column]) == {"sim"}, table
        lag = frame["ts_ingested"] - frame["ts_event"]
        if table == "economic_events":
            assert (lag == timedelta(days=-7)).all()
        else:
            assert (lag >= timedelta(0)).all(), table
    bars = minutes(frames["bars"])
    assert (bars["ts_ingested"] - bars["ts_event"] == timedelta(minutes=1)).all()
    assert set(frames["bars"]["timeframe"]) == {"1Min", "1Day"}
    assert set(frames["open_interest"]["period"]) == {"5m"}


def test_rows_are_sorted_by_event_time(long_frames: dict[str, pl.DataFrame]) -> None:
    for table, frame in long_frames.items():
        assert frame["ts_event"].is_sorted(), table


# --- bars --------------------------------------------------------------------------------------


def test_ohlc_is_consistent(long_frames: dict[str, pl.DataFrame]) -> None:
    bars = long_frames["bars"]
    assert set(bars["symbol"]) == set(DEFAULT_WATCHLIST)
    assert set(bars["timeframe"]) == {"1Min", "1Day"}
    broken = bars.filter(
        (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("low") <= 0)
        | (pl.col("volume") <= 0)
        | (pl.col("trade_count") <= 0)
        | ~pl.col("vwap").is_between(pl.col("low"), pl.col("high"))
    )
    assert broken.is_empty(), broken
    # Within a symbol's trading, each bar opens where the previous one closed, across
    # simulated days too: the carried state is the previous day's last close.
    btc = closes(bars, "BTC/USD")
    assert np.allclose(btc["open"].to_numpy()[1:], btc["close"].to_numpy()[:-1], rtol=1e-12)


def test_equities_trade_only_in_new_york_market_hours_across_dst() -> None:
    epoch = datetime(2026, 3, 5, tzinfo=UTC)  # Thursday; clocks go forward on Sunday 8 March
    bars = MarketSimulator(seed=3, epoch=epoch).generate(epoch, epoch + timedelta(days=6))["bars"]
    equities = minutes(bars).filter(~pl.col("symbol").str.ends_with("/USD"))
    local = equities.with_columns(pl.col("ts_event").dt.convert_time_zone("America/New_York").alias("local"))
    assert local["local"].dt.weekday().max() <= 5
    assert local["local"].dt.time().min() == time(9, 30)
    assert local["local"].dt.time().max() == time(15, 59)
    per_day = local.group_by(pl.col("local").dt.date().alias("day"), "symbol").len()
    assert set(per_day["len"]) == {390}
    assert per_day["day"].n_unique() == 4  # Thu, Fri, Mon, Tue
    opens = (
        equities.filter(pl.col("symbol") == "SPY")
        .group_by(pl.col("ts_event").dt.date())
        .agg(pl.col("ts_event").min().dt.time().alias("open"))
    )
    assert dict(opens.iter_rows()) == {
        date(2026, 3, 5): time(14, 30),
        date(2026, 3, 6): time(14, 30),
        date(2026, 3, 9): time(13, 30),
        date(2026, 3, 10): time(13, 30),
    }


def test_crypto_trades_every_minute_of_every_day(long_frames: dict[str, pl.DataFrame]) -> None:
    crypto = minutes(long_frames["bars"]).filter(pl.col("symbol").map_elements(is_crypto, return_dtype=pl.Boolean))
    for symbol in ("BTC/USD", "ETH/USD"):
        times = crypto.filter(pl.col("symbol") == symbol)["ts_event"]
        assert times.len() == (LONG_END - EPOCH) // timedelta(minutes=1)
        assert (times.diff().drop_nulls() == timedelta(minutes=1)).all()


def test_correlation_signs(frames: dict[str, pl.DataFrame]) -> None:
    returns = minute_returns(frames["bars"])
    assert correlation(returns, "SPY", "VIXY") < -0.5
    assert correlation(returns, "GLD", "SLV") > 0.5
    assert correlation(returns, "SPY", "QQQ") > 0.5
    assert correlation(returns, "CRM", "IGV") > 0.3


def test_bonds_hedge_stocks_when_risk_is_off(long_frames: dict[str, pl.DataFrame], long_regimes: pl.DataFrame) -> None:
    returns = minute_returns(long_frames["bars"]).join(long_regimes, on="ts_event")
    risk_off = returns.filter(pl.col("regime").is_in(RISK_OFF))
    calm = returns.filter(~pl.col("regime").is_in(RISK_OFF))
    assert risk_off.height > 300
    assert correlation(risk_off, "TLT", "SPY") < -0.2 < correlation(calm, "TLT", "SPY")
    assert correlation(risk_off, "UUP", "SPY") < 0


# --- regimes -----------------------------------------------------------------------------------


def test_regime_path_covers_the_window_minute_by_minute(sim: MarketSimulator) -> None:
    start = EPOCH + timedelta(hours=3, minutes=7)
    path = sim.regime_path(start, DEFAULT_END)
    assert path["ts_event"][0] == start
    assert path.height == (DEFAULT_END - start) // timedelta(minutes=1)
    assert (path["ts_event"].diff().drop_nulls() == timedelta(minutes=1)).all()
    assert set(path["regime"]) <= set(REGIMES)


def test_regimes_change_within_the_default_window(sim: MarketSimulator) -> None:
    path = sim.regime_path(EPOCH, DEFAULT_END)
    changes = (path["regime"] != path["regime"].shift(1)).sum() - 1
    assert changes >= 2
    assert path["regime"].n_unique() >= 3


def test_regimes_shape_volatility_and_crash_leads_to_recovery(
    long_frames: dict[str, pl.DataFrame], long_regimes: pl.DataFrame
) -> None:
    assert set(long_regimes["regime"]) == set(REGIMES)
    spy = minute_returns(long_frames["bars"]).join(long_regimes, on="ts_event")
    vol = spy.group_by("regime").agg(pl.col("SPY").std())
    by_regime = dict(vol.iter_rows())
    assert by_regime["HIGH_VOL"] > 1.5 * by_regime["MEAN_REVERTING"]
    runs = long_regimes.filter(pl.col("regime") != pl.col("regime").shift(1))["regime"].to_list()
    after_crash = [runs[i + 1] for i, regime in enumerate(runs[:-1]) if regime == "CRASH"]
    assert after_crash and after_crash.count("RECOVERY") / len(after_crash) >= 0.5


# --- episodes ----------------------------------------------------------------------------------


def test_funding_episode_is_followed_by_a_liquidation_cascade(frames: dict[str, pl.DataFrame]) -> None:
    funding = frames["funding_rates"].filter(pl.col("symbol") == "BTCUSDT")
    high = funding.filter(pl.col("funding_rate") > 0.0005)
    assert high.height >= 1
    last_high = high["ts_event"][-1]
    following = funding.filter(pl.col("ts_event") > last_high)
    if following.height:
        assert following["funding_rate"][0] < high["funding_rate"][-1]

    oi = frames["open_interest"].filter(
        pl.col("symbol") == "BTCUSDT", pl.col("ts_event").is_between(last_high, last_high + timedelta(hours=7))
    )
    hour_later = oi.with_columns(pl.col("ts_event") - timedelta(hours=1)).rename({"open_interest": "oi_later"})
    drops = oi.join(hour_later.select("ts_event", "oi_later"), on="ts_event").with_columns(
        (pl.col("oi_later") / pl.col("open_interest") - 1).alias("change")
    )
    worst = drops.sort("change").row(0, named=True)
    assert worst["change"] < -0.05
    btc = closes(frames["bars"], "BTC/USD")
    hour = btc.filter(pl.col("ts_event").is_between(worst["ts_event"], worst["ts_event"] + timedelta(hours=1)))
    assert hour["close"][-1] < hour["open"][0]
    assert hour["close"].min() < hour["open"][0] * 0.975


def test_macro_event_in_the_default_window(frames: dict[str, pl.DataFrame]) -> None:
    events = frames["economic_events"]
    assert events.height >= 1
    assert set(events["event_type"]) <= {"NFP", "CPI", "FOMC"}
    assert (events["importance"] == 3).all()
    local = events["ts_event"].dt.convert_time_zone("America/New_York").dt.time()
    assert set(local) <= {time(8, 30), time(14, 0)}


def test_calendar_follows_the_release_rules(long_frames: dict[str, pl.DataFrame]) -> None:
    events = long_frames["economic_events"].with_columns(
        pl.col("ts_event").dt.convert_time_zone("America/New_York").alias("local")
    )
    scheduled = events.filter(~pl.col("title").str.contains("simulated extra"))
    nfp = scheduled.filter(pl.col("event_type") == "NFP")["local"]
    assert nfp.dt.date().to_list() == [date(2026, 3, 6), date(2026, 4, 3), date(2026, 5, 1)]
    cpi = scheduled.filter(pl.col("event_type") == "CPI")["local"]
    assert cpi.dt.month().to_list() == [3, 4]
    assert (cpi.dt.day().is_between(10, 15) & (cpi.dt.weekday() <= 5)).all()
    fomc = scheduled.filter(pl.col("event_type") == "FOMC")["local"]
    assert fomc.dt.month().to_list() == [3, 4]  # FOMC meets in March and April, not May
    assert (fomc.dt.weekday() == 3).all() and (fomc.dt.hour() == 14).all()
    business_days = pl.date_range(EPOCH.date(), LONG_END.date(), closed="left", eager=True).dt.weekday() <= 5
    assert events.height >= business_days.sum() // 2


def test_macro_events_expand_volatility_and_set_direction_in_the_first_candle(
    long_frames: dict[str, pl.DataFrame],
) -> None:
    bars = long_frames["bars"]
    btc = closes(bars, "BTC/USD").with_columns((pl.col("close") / pl.col("open")).log().abs().alias("move"))
    spy = closes(bars, "SPY")
    quiet, loud, agree, candles = [], [], [], []
    for moment in long_frames["economic_events"]["ts_event"]:
        quiet.append(
            btc.filter(pl.col("ts_event").is_between(moment - timedelta(hours=4), moment, closed="left"))["move"].mean()
        )
        loud.append(
            btc.filter(pl.col("ts_event").is_between(moment, moment + timedelta(minutes=15), closed="left"))[
                "move"
            ].mean()
        )
        session = spy.filter(pl.col("ts_event") >= moment).head(60)
        first, follow = session["close"][14] / session["open"][0] - 1, session["close"][-1] / session["close"][14] - 1
        candles.append(abs(first))
        agree.append(np.sign(first) == np.sign(follow))
    assert np.mean(loud) > 1.5 * np.mean(quiet)
    assert np.mean(agree) >= 0.65
    every_candle = spy.group_by_dynamic("ts_event", every="15m").agg(pl.col("open").first(), pl.col("close").last())
    assert np.mean(candles) > 2 * (every_candle["close"] / every_candle["open"] - 1).abs().mean()


def test_margin_hike_notice_and_metals_selloff(
    frames: dict[str, pl.DataFrame], long_frames: dict[str, pl.DataFrame]
) -> None:
    notices = frames["margin_notices"]
    assert set(notices["product"]) == {"GC", "SI"}
    assert (notices["unit"] == "USD").all()
    assert (notices["change_pct"] > 0).all()
    assert (notices["new_maintenance"] > notices["old_maintenance"]).all()
    assert (notices["new_initial"] > notices["old_initial"]).all()
    assert np.allclose(
        notices["change_pct"],
        100 * (notices["new_maintenance"] - notices["old_maintenance"]) / notices["old_maintenance"],
    )
    assert (notices["effective_date"] > notices["notice_date"]).all()
    assert (notices["ts_ingested"] == notices["ts_event"]).all()

    # The daily snapshots show the old maintenance until the effective date, then the new.
    gc = notices.filter(pl.col("product") == "GC").row(0, named=True)
    snapshots = long_frames["margin_rates"].filter(pl.col("clearing_code") == "GC")
    on = snapshots.with_columns(pl.col("ts_event").dt.date().alias("day"))
    assert on.filter(pl.col("day") == gc["notice_date"])["maintenance_rate"][0] == gc["old_maintenance"]
    assert on.filter(pl.col("day") == gc["effective_date"])["maintenance_rate"][0] == gc["new_maintenance"]

    hikes = long_frames["margin_notices"].filter(pl.col("product") == "GC", pl.col("change_pct") > 0)
    assert hikes.height >= 5
    bars = long_frames["bars"]
    moves = {
        symbol: [
            session_close(bars, symbol, moment, 2) / price_before(bars, symbol, moment) - 1
            for moment in hikes["ts_event"]
        ]
        for symbol in ("GLD", "SLV", "GDX")
    }
    assert np.mean(moves["GLD"]) < -0.01
    assert np.mean(moves["SLV"]) < np.mean(moves["GLD"])
    assert np.mean(moves["GDX"]) < -0.01


def test_ai_release_moves_software_stocks_headlines_and_stars(
    frames: dict[str, pl.DataFrame], long_frames: dict[str, pl.DataFrame]
) -> None:
    releases = frames["github_releases"]
    launches = releases.filter(pl.col("tag_name").str.ends_with(".0"))
    assert launches.height >= 1
    assert releases["release_id"].is_unique().all()

    headlines = long_frames["headlines"]
    stats = long_frames["repo_stats"]
    all_launches = long_frames["github_releases"].filter(pl.col("tag_name").str.ends_with(".0"))
    for launch in all_launches.iter_rows(named=True):
        burst = headlines.filter(
            pl.col("ts_event").is_between(launch["ts_event"], launch["ts_event"] + timedelta(hours=6)),
            pl.col("matched_labs").list.len() > 0,
        )
        assert burst.height >= 5
        assert burst["matched_tickers"].list.contains("LZ").any()
        repo = stats.filter(pl.col("repo") == launch["repo"]).with_columns(pl.col("stars").diff().alias("gained"))
        next_day = launch["ts_event"].date() + timedelta(days=1)
        gained = repo.filter(pl.col("ts_event").dt.date() == next_day)["gained"][0]
        assert gained > 2 * repo["gained"].median()

    bars = long_frames["bars"]
    measured = all_launches.filter(pl.col("ts_event") < LONG_END - timedelta(days=16))
    assert measured.height >= 4

    def excess(symbol: str, moment: datetime, sessions: int, since: int = 0) -> float:
        """Return over sessions (since, sessions] after `moment`, less the software ETF's:
        IGV has about the same market and software exposure, and dips only half as much."""

        def move(name: str) -> float:
            start = price_before(bars, name, moment) if since == 0 else session_close(bars, name, moment, since)
            return session_close(bars, name, moment, sessions) / start - 1

        return move(symbol) - move("IGV")

    quality = ("CRM", "SHOP", "ADBE")
    impaired = [excess("LZ", moment, 2) for moment in measured["ts_event"]]
    dips = [np.mean([excess(s, moment, 2) for s in quality]) for moment in measured["ts_event"]]
    recoveries = [np.mean([excess(s, moment, 10, since=2) for s in quality]) for moment in measured["ts_event"]]
    assert max(impaired) < 0
    assert np.mean(impaired) < -0.04
    assert np.mean(dips) < -0.015
    assert np.mean(recoveries) > 0.01


def test_shanghai_premium_falls_and_recovers(frames: dict[str, pl.DataFrame]) -> None:
    premiums = frames["metal_premiums"].sort("ts_event")
    assert set(premiums["session"]) == {"AM", "PM"}
    pct = premiums["premium_pct"].to_numpy()
    falls = [i for i in range(1, len(pct)) if pct[i] < pct[i - 1] - 1.0]
    assert falls
    trough = falls[0]
    assert pct[trough + 1 :].max() > pct[trough] + 0.5
    expected_usd = premiums["ref_usd_per_oz"] * premiums["premium_pct"] / 100
    assert np.allclose(premiums["premium_usd_per_oz"], expected_usd)
    grams = premiums["sge_usd_per_oz"] * premiums["usd_cny"] / 31.1034768
    assert np.allclose(premiums["sge_cny_per_gram"], grams)


def test_vix_and_credit_spread_rise_with_stress(
    long_frames: dict[str, pl.DataFrame], long_regimes: pl.DataFrame
) -> None:
    series = long_frames["market_series"]
    assert set(series["series"]) == {"VIX", "BAMLH0A0HYM2"}
    stress = long_regimes.group_by(pl.col("ts_event").dt.date().alias("day")).agg(
        pl.col("regime").is_in(RISK_OFF).sum().alias("stressed_minutes")
    )
    daily = series.with_columns(pl.col("ts_event").dt.date().alias("day")).join(stress, on="day")
    for name, gap in (("VIX", 3.0), ("BAMLH0A0HYM2", 0.15)):
        values = daily.filter(pl.col("series") == name)
        stressed = values.filter(pl.col("stressed_minutes") >= 120)["value"].mean()
        calm = values.filter(pl.col("stressed_minutes") == 0)["value"].mean()
        assert isinstance(stressed, float) and isinstance(calm, float)
        assert stressed > calm + gap, name


# --- the exchange calendar ---------------------------------------------------------------------

THANKSGIVING_WEEK = datetime(2026, 11, 25, tzinfo=UTC)  # Thanksgiving on the 26th, a half day on the 27th
INDEPENDENCE_WEEK = datetime(2026, 7, 2, tzinfo=UTC)  # Independence Day observed on Friday 3 July


@pytest.fixture(scope="module")
def thanksgiving_bars() -> pl.DataFrame:
    return MarketSimulator(seed=SEED, epoch=THANKSGIVING_WEEK).generate(
        THANKSGIVING_WEEK, datetime(2026, 12, 1, tzinfo=UTC)
    )["bars"]


def new_york_days(bars: pl.DataFrame) -> pl.DataFrame:
    local = pl.col("ts_event").dt.convert_time_zone("America/New_York")
    return bars.with_columns(local.dt.date().alias("day"), local.dt.time().alias("time"))


def test_a_holiday_has_no_equity_bars_and_crypto_trades_as_usual(thanksgiving_bars: pl.DataFrame) -> None:
    bars = new_york_days(minutes(thanksgiving_bars))
    spy_days = bars.filter(pl.col("symbol") == "SPY")["day"].unique().sort().to_list()
    assert spy_days == [date(2026, 11, 25), date(2026, 11, 27), date(2026, 11, 30)]
    btc = minutes(thanksgiving_bars).filter(pl.col("symbol") == "BTC/USD")
    assert btc.height == 6 * MINUTES_PER_DAY
    assert (btc["ts_event"].diff().drop_nulls() == timedelta(minutes=1)).all()


def test_a_half_day_ends_at_13_00_new_york(thanksgiving_bars: pl.DataFrame) -> None:
    bars = new_york_days(minutes(thanksgiving_bars)).filter(~pl.col("symbol").str.ends_with("/USD"))
    by_day = bars.group_by("day", "symbol").agg(pl.col("time").min().alias("first"), pl.col("time").max().alias("last"))
    half = by_day.filter(pl.col("day") == date(2026, 11, 27))
    assert set(half["first"]) == {time(9, 30)} and set(half["last"]) == {time(12, 59)}
    full = by_day.filter(pl.col("day") == date(2026, 11, 30))
    assert set(full["last"]) == {time(15, 59)}
    # The closing rush of volume comes before the early close.
    spy = bars.filter(pl.col("symbol") == "SPY", pl.col("day") == date(2026, 11, 27)).sort("ts_event")
    assert spy["volume"].tail(10).mean() > 1.3 * spy["volume"].slice(90, 60).mean()


def test_an_exchange_holiday_ends_no_session_but_moves_the_overnight_price() -> None:
    bars = MarketSimulator(seed=SEED, epoch=INDEPENDENCE_WEEK).generate(
        INDEPENDENCE_WEEK, datetime(2026, 7, 7, tzinfo=UTC)
    )["bars"]
    spy = new_york_days(minutes(bars)).filter(pl.col("symbol") == "SPY")
    assert spy["day"].unique().sort().to_list() == [date(2026, 7, 2), date(2026, 7, 6)]
    thursday_close = spy.filter(pl.col("day") == date(2026, 7, 2))["close"][-1]
    monday_open = spy.filter(pl.col("day") == date(2026, 7, 6))["open"][0]
    assert monday_open != thursday_close  # the latent price moved over the long weekend: a gap


def test_uneven_chunks_equal_one_call_across_a_holiday_and_a_half_day(thanksgiving_bars: pl.DataFrame) -> None:
    start, end = THANKSGIVING_WEEK, datetime(2026, 12, 1, tzinfo=UTC)
    cuts = [
        start,
        datetime(2026, 11, 25, 21, 0, 30, tzinfo=UTC),  # the close before the holiday, mid-minute
        datetime(2026, 11, 26, 15, tzinfo=UTC),  # Thanksgiving, when a session would be open
        datetime(2026, 11, 27, 4, 59, tzinfo=UTC),  # a minute before the half day's daily bar is stamped
        datetime(2026, 11, 27, 17, 59, tzinfo=UTC),  # the half day's last minute
        datetime(2026, 11, 27, 18, 0, tzinfo=UTC),  # its early close
        end,
    ]
    chunked = MarketSimulator(seed=SEED, epoch=start)
    parts = [chunked.generate(a, b) for a, b in reversed(list(pairwise(cuts)))][::-1]
    whole = MarketSimulator(seed=SEED, epoch=start).generate(start, end)
    assert_frame_equal(whole["bars"], thanksgiving_bars)
    for table, frame in whole.items():
        assert_frame_equal(pl.concat([part[table] for part in parts]), frame)
    # What makes the window worth chunking: no equity session on the holiday, daily bars on the others.
    days = new_york_days(dailies(whole["bars"]).filter(pl.col("symbol") == "SPY", pl.col("ts_event") >= start))
    assert days["day"].to_list() == [date(2026, 11, 25), date(2026, 11, 27), date(2026, 11, 30)]


# --- daily bars --------------------------------------------------------------------------------


def test_a_daily_bar_aggregates_its_session_or_day_of_minutes(thanksgiving_bars: pl.DataFrame) -> None:
    bars = thanksgiving_bars.filter(pl.col("ts_event") >= THANKSGIVING_WEEK)
    daily = dailies(bars)
    minute = minutes(bars).with_columns(
        pl.when(pl.col("symbol").str.ends_with("/USD"))
        .then(pl.col("ts_event").dt.date())
        .otherwise(pl.col("ts_event").dt.convert_time_zone("America/New_York").dt.date())
        .alias("day")
    )
    aggregated = minute.group_by("symbol", "day").agg(
        pl.col("open").sort_by("ts_event").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").sort_by("ts_event").last(),
        pl.col("volume").sum(),
        pl.col("trade_count").sum(),
        ((pl.col("vwap") * pl.col("volume")).sum() / pl.col("volume").sum()).alias("vwap"),
        pl.col("ts_event").max().alias("last_minute"),
    )
    daily = daily.with_columns(
        pl.when(pl.col("symbol").str.ends_with("/USD"))
        .then(pl.col("ts_event").dt.date())
        .otherwise(pl.col("ts_event").dt.convert_time_zone("America/New_York").dt.date())
        .alias("day")
    )
    joined = daily.join(aggregated, on=["symbol", "day"], suffix="_minutes", how="full", coalesce=True)
    assert joined.height == daily.height == aggregated.height == 6 * 2 + 3 * 17
    for column in ("open", "high", "low", "close", "volume", "vwap"):
        assert np.allclose(joined[column], joined[f"{column}_minutes"], rtol=1e-12), column
    assert (joined["trade_count"] == joined["trade_count_minutes"]).all()
    # Stamped as Alpaca stamps them, published at the close: the half day's at 13:00 New York.
    equities = joined.filter(~pl.col("symbol").str.ends_with("/USD"))
    assert (equities["ts_event"].dt.convert_time_zone("America/New_York").dt.time() == time(0, 0)).all()
    assert (equities["ts_ingested"] == equities["last_minute"] + timedelta(minutes=2)).all()
    assert set(equities.filter(pl.col("day") == date(2026, 11, 27))["ts_ingested"]) == {
        datetime(2026, 11, 27, 18, 1, tzinfo=UTC)
    }
    crypto = joined.filter(pl.col("symbol").str.ends_with("/USD"))
    assert (crypto["ts_event"].dt.time() == time(0, 0)).all()
    assert (crypto["ts_ingested"] == crypto["ts_event"] + timedelta(days=1, minutes=1)).all()


def test_the_daily_history_ends_where_the_simulation_starts(
    sim: MarketSimulator, frames: dict[str, pl.DataFrame]
) -> None:
    history = sim.daily_history()
    assert (history["timeframe"] == "1Day").all() and (history["ts_event"] < EPOCH).all()
    assert (history["ts_ingested"] <= EPOCH + timedelta(minutes=1)).all()
    counts = dict(history.group_by("symbol").len().iter_rows())
    assert counts == dict.fromkeys(DEFAULT_WATCHLIST, 300)
    spy = new_york_days(history.filter(pl.col("symbol") == "SPY"))
    # NYSE sessions only: no Christmas, no New Year's Day; the half day after Thanksgiving published at 13:00.
    assert date(2025, 12, 25) not in spy["day"] and date(2026, 1, 1) not in spy["day"]
    assert spy["day"][-1] == date(2026, 2, 27)
    half_day = spy.filter(pl.col("day") == date(2025, 11, 28))
    assert half_day["ts_ingested"].to_list() == [datetime(2025, 11, 28, 18, 1, tzinfo=UTC)]
    btc = history.filter(pl.col("symbol") == "BTC/USD")
    assert (btc["ts_event"].diff().drop_nulls() == timedelta(days=1)).all() and btc["ts_event"][
        -1
    ] == EPOCH - timedelta(days=1)
    # Each asset's last daily close is the price the minute history starts from: exactly the first
    # crypto minute's open; an equity's first session then opens a small overnight move away.
    first_open = minutes(frames["bars"]).group_by("symbol").agg(pl.col("open").sort_by("ts_event").first())
    last_close = history.group_by("symbol").agg(pl.col("close").sort_by("ts_event").last())
    joined = dict(
        (symbol, (opened, closed)) for symbol, opened, closed in first_open.join(last_close, on="symbol").iter_rows()
    )
    for symbol, (opened, closed) in joined.items():
        if is_crypto(symbol):
            assert opened == closed, symbol
        else:
            assert abs(np.log(opened / closed)) < 0.02, symbol


def test_the_daily_history_is_seeded_and_looks_like_a_market(sim: MarketSimulator) -> None:
    history = sim.daily_history()
    assert_frame_equal(MarketSimulator(seed=SEED, epoch=EPOCH).daily_history(), history)
    other = MarketSimulator(seed=SEED + 1, epoch=EPOCH).daily_history()
    assert other.height == history.height and not other["close"].equals(history["close"])
    broken = history.filter(
        (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("low") <= 0)
        | (pl.col("volume") <= 0)
        | ~pl.col("vwap").is_between(pl.col("low"), pl.col("high"))
    )
    assert broken.is_empty(), broken

    def daily_returns(symbol: str) -> npt.NDArray[np.float64]:
        return np.diff(np.log(history.filter(pl.col("symbol") == symbol)["close"].to_numpy()))

    spy, vixy, hyg, tlt = (daily_returns(symbol) for symbol in ("SPY", "VIXY", "HYG", "TLT"))
    assert 0.1 < spy.std() * np.sqrt(252) < 0.4
    assert np.corrcoef(spy, vixy)[0, 1] < -0.5 and np.corrcoef(spy, hyg)[0, 1] > 0.3
    # Calm and stressed stretches: a month's volatility varies severalfold, and the market draws down.
    monthly = np.array([spy[k - 21 : k].std() for k in range(21, spy.size)])
    assert monthly.max() > 2.5 * monthly.min()
    closes_spy = np.exp(np.cumsum(spy))
    assert (closes_spy / np.maximum.accumulate(closes_spy)).min() < 0.9
    assert tlt.std() < spy.std()


def test_the_window_that_holds_the_epoch_brings_the_daily_history(sim: MarketSimulator) -> None:
    cut = EPOCH + timedelta(hours=2)
    first, second = sim.generate(EPOCH - timedelta(days=1), cut), sim.generate(cut, DEFAULT_END)
    assert_frame_equal(first["bars"].filter(pl.col("ts_event") < EPOCH), sim.daily_history())
    assert (second["bars"]["ts_event"] >= cut).all()
    assert sim.generate(EPOCH - timedelta(days=3), EPOCH)["bars"].is_empty()
    none = MarketSimulator(seed=SEED, epoch=EPOCH, daily_history_sessions=0)
    assert none.daily_history().is_empty()
    assert_frame_equal(none.generate(EPOCH, cut)["bars"], first["bars"].filter(pl.col("ts_event") >= EPOCH))


def test_an_epoch_after_midnight_keeps_its_days_daily_bars() -> None:
    epoch = datetime(2026, 3, 2, 15, tzinfo=UTC)  # Monday 10:00 New York, after SPY's daily bar is stamped
    late = MarketSimulator(seed=SEED, epoch=epoch, daily_history_sessions=5)
    history = late.daily_history()
    assert (history["ts_event"] < epoch).all()
    assert set(history.filter(pl.col("ts_event") >= EPOCH)["symbol"]) == set(DEFAULT_WATCHLIST)
    frames = late.generate(epoch, epoch + timedelta(days=1))
    assert dailies(frames["bars"]).filter(pl.col("ts_event") >= EPOCH, pl.col("ts_event") < epoch).height == len(
        DEFAULT_WATCHLIST
    )


# --- episodes on the calendar -------------------------------------------------------------------


def test_bls_releases_follow_federal_holidays_not_the_exchange() -> None:
    calendar = MarketSimulator(seed=SEED, epoch=EPOCH).economic_calendar(EPOCH, datetime(2027, 2, 1, tzinfo=UTC))
    nfp = calendar.filter(pl.col("event_type") == "NFP", ~pl.col("title").str.contains("simulated extra"))
    days = nfp["ts_event"].dt.convert_time_zone("America/New_York").dt.date().to_list()
    assert date(2026, 4, 3) in days  # Good Friday: the market is shut, the BLS publishes
    assert date(2026, 7, 2) in days and date(2026, 7, 3) not in days  # Independence Day observed: Thursday
    assert date(2027, 1, 8) in days and date(2027, 1, 1) not in days  # New Year's Day: a week later
    extras = calendar.filter(pl.col("title").str.contains("simulated extra"))
    sessions = market_calendar().equities
    assert all(
        sessions.session_on(moment.astimezone(ZoneInfo("America/New_York")).date()) is not None
        for moment in extras["ts_event"]
    )


def test_metals_weeks_and_margin_notices_count_nyse_sessions() -> None:
    start = datetime(2026, 11, 16, tzinfo=UTC)
    frames = MarketSimulator(seed=SEED, epoch=start).generate(start, datetime(2027, 1, 12, tzinfo=UTC))
    sessions = market_calendar().equities
    hikes = frames["margin_notices"].filter(pl.col("product") == "GC", pl.col("change_pct") > 0)
    notices = [sessions.session_on(day) for day in hikes["notice_date"]]
    assert None not in notices and len(notices) >= 6
    assert {b - a for a, b in pairwise(notices) if a is not None and b is not None} == {5}
    for notice, effective in zip(hikes["notice_date"], hikes["effective_date"], strict=True):
        index = sessions.session_on(notice)
        assert index is not None and sessions.day_of(index + 1) == effective
    # The hike is posted after that day's close, early on a half day.
    for moment, notice in zip(hikes["ts_event"], hikes["notice_date"], strict=True):
        index = sessions.session_on(notice)
        assert index is not None and timedelta(minutes=15) <= moment - sessions.close_of(index) <= timedelta(
            minutes=105
        )
    # VIX and the high-yield spread close with the session, none on a holiday.
    vix = frames["market_series"].filter(pl.col("series") == "VIX")
    for moment in vix["ts_event"]:
        index = sessions.session_on(moment.astimezone(ZoneInfo("America/New_York")).date())
        assert index is not None and sessions.close_of(index) == moment
