// The rules of keys.ts that need no tracker: TRACKER_RATE_LIMIT's syntax and the token bucket, on a
// clock the test moves.

import { describe, expect, test } from "bun:test";
import { ConfigError, readConfig } from "./config.ts";
import { ApiError, RetryLater } from "./domain.ts";
import { checkKeyName, type KeyHolder, parseRateLimit, RateLimiter } from "./keys.ts";

describe("TRACKER_RATE_LIMIT", () => {
  test("is RATE, or RATE/BURST with a burst no smaller", () => {
    expect([parseRateLimit("20"), parseRateLimit("20/60"), parseRateLimit("1/1")]).toEqual([
      { perSecond: 20, burst: 20 },
      { perSecond: 20, burst: 60 },
      { perSecond: 1, burst: 1 },
    ]);
    for (const bad of ["0", "20/10", "fast", "20/", "/20", "2.5", "-1", "20/60/80"])
      expect([bad, parseRateLimit(bad)]).toEqual([bad, null]);
  });

  test("a bad value stops the start with a sentence naming the variable, not the value", () => {
    const env = { HOME: "/home/ada", TRACKER_RATE_LIMIT: "lots" };
    expect(() => readConfig(env)).toThrow(
      new ConfigError(
        "TRACKER_RATE_LIMIT must be requests per second per key, optionally with a burst no smaller: such as 20 or 20/60.",
      ),
    );
    expect(readConfig({ HOME: "/home/ada", TRACKER_RATE_LIMIT: "5/10" }).rateLimit).toEqual({ perSecond: 5, burst: 10 });
    expect(readConfig({ HOME: "/home/ada" }).rateLimit).toBeNull();
  });
});

describe("the rate limiter", () => {
  const holder = (name: string, perSecond: number, burst: number): KeyHolder => ({
    name,
    role: "member",
    projects: null,
    scope: `scope-${name}`,
    rateLimit: { perSecond, burst },
  });

  function refusal(take: () => void): RetryLater {
    try {
      take();
    } catch (error) {
      if (error instanceof RetryLater) return error;
      throw error;
    }
    throw new Error("expected a refusal");
  }

  test("lets a burst through, then refuses with the seconds until the next request, and refills with time", () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const alice = holder("alice", 2, 3);
    for (let i = 0; i < 3; i++) limiter.take(alice);
    const refused = refusal(() => limiter.take(alice));
    expect([refused.code, refused.retryAfterSeconds, refused.message]).toEqual([
      "too_many_requests",
      1,
      "The key alice is over its rate limit (2 a second, burst 3); retry in 1 s",
    ]);
    now += 500; // one request's worth at 2 a second
    limiter.take(alice);
    expect(() => limiter.take(alice)).toThrow(RetryLater);
    now += 60_000; // a quiet spell refills the burst, no more
    for (let i = 0; i < 3; i++) limiter.take(alice);
    expect(() => limiter.take(alice)).toThrow(RetryLater);
  });

  test("counts each key apart, and a key without a limit never", () => {
    const limiter = new RateLimiter(() => 0);
    const alice = holder("alice", 1, 1);
    limiter.take(alice);
    expect(() => limiter.take(alice)).toThrow(RetryLater);
    limiter.take(holder("bob", 1, 1));
    const operator: KeyHolder = { ...alice, name: "operator", scope: "operator", rateLimit: null };
    for (let i = 0; i < 1000; i++) limiter.take(operator);
  });
});

describe("key names", () => {
  test("are the name pattern, and never an operator key's", () => {
    expect(() => checkKeyName("alice.smith-2")).not.toThrow();
    for (const name of ["operator", "Operator-3"]) {
      expect(() => checkKeyName(name)).toThrow(
        new ApiError(
          "validation_failed",
          `${name} is the name of an operator key (TRACKER_API_KEYS or the key file); choose another`,
        ),
      );
    }
    expect(() => checkKeyName("-dash")).toThrow(ApiError);
  });
});
