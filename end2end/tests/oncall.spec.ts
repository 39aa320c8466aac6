import { expect, test } from "@playwright/test";
import { open, session } from "./support";

test("acknowledge, assign and comment from the incident page; the timeline and the list show them", async ({
  browser,
}) => {
  const page = await session(browser, "bob");
  const service = `queue-${Date.now()}`;
  const fired = await page.request.post("/api/v1/alerts/webhook", {
    data: {
      name: "QueueBacklog",
      service,
      severity: "critical",
      description: "consumer on 10.77.1.9 stopped",
    },
  });
  expect(fired.status()).toBe(202);
  const incident = (await fired.json()).incidents[0];

  // Not acknowledged yet: the list's filter finds it.
  await open(page, "/incidents?acknowledged=false");
  await expect(page.locator(`a[href="/incidents/${incident}"]`)).toHaveCount(1);

  await open(page, `/incidents/${incident}`);
  const triage = page.getByTestId("triage");
  await triage.getByTestId("acknowledge").click();
  await expect(triage.getByTestId("acknowledged")).toContainText("Acknowledged by bob");

  await triage.getByTestId("assignee-input").fill("alice");
  await triage.getByTestId("assign").click();
  await expect(triage.getByTestId("assignee")).toHaveText("Assigned to alice");

  await triage.getByTestId("comment-input").fill("Restarted the consumer on 10.77.1.9; watching lag.");
  await triage.getByTestId("comment-submit").click();
  const comment = triage.getByTestId("comment");
  await expect(comment).toHaveCount(1);
  await expect(comment).toContainText("bob");
  await expect(comment).toContainText("Restarted the consumer on [IP_");
  await expect(comment).not.toContainText("10.77.1.9");

  // An unknown user is named in the error, and nothing changes.
  await triage.getByTestId("assignee-input").fill("mallory");
  await triage.getByTestId("assign").click();
  await expect(triage.getByRole("alert")).toContainText("`mallory` is not a user");
  await expect(triage.getByTestId("assignee")).toHaveText("Assigned to alice");

  const entries = page.getByTestId("timeline").getByTestId("timeline-entry");
  await expect(entries.filter({ hasText: "acknowledged by bob" })).toHaveCount(1);
  await expect(entries.filter({ hasText: "assigned to alice" })).toHaveCount(1);
  await expect(entries.filter({ hasText: "commented: Restarted the consumer" })).toHaveCount(1);

  // Alice finds it under "Assigned to me"; it has left the unacknowledged list.
  const alice = await session(browser, "alice");
  await open(alice, "/incidents");
  await alice.getByTestId("filter-mine").click();
  await expect(alice).toHaveURL(/assignee=alice/);
  const rows = alice.getByTestId("incident-row");
  await expect(rows).toHaveCount(1);
  await expect(rows.first().getByTestId("owner")).toContainText("alice");
  await expect(rows.first().getByTestId("owner")).toContainText("ack bob");
  await open(alice, "/incidents?acknowledged=false");
  await expect(alice.locator(`a[href="/incidents/${incident}"]`)).toHaveCount(0);
});

test("silence from the console: held back, counted, shown, then expired; and from an alert", async ({
  browser,
}) => {
  const page = await session(browser, "bob");
  const name = `NightlyBackup${Date.now()}`;
  await open(page, "/silences");
  const form = page.getByTestId("new-silence");
  await form.getByTestId("silence-matchers-input").fill(`{alertname="${name}"}`);
  await form.getByTestId("silence-minutes").fill("30");
  await form.getByTestId("silence-comment").fill("backups rewritten tonight");
  await form.getByTestId("create-silence").click();
  const holding = page.getByTestId("silences-holding");
  const mine = holding.getByTestId("silence").filter({ hasText: name });
  await expect(mine).toHaveCount(1);

  // Matching alerts are stored and counted, and open nothing.
  for (let i = 0; i < 2; i++) {
    const fired = await page.request.post("/api/v1/alerts/webhook", {
      data: { name, service: "backup", severity: "critical" },
    });
    expect(fired.status()).toBe(202);
    const body = await fired.json();
    expect(body.silenced).toBe(1);
    expect(body.incidents).toEqual([]);
  }
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(mine.getByTestId("silence-held")).toContainText("2 firing(s) held back");

  // Silencing everything is refused for an SRE, with the reason.
  await form.getByTestId("silence-matchers-input").fill('{alertname=~".*"}');
  await form.getByTestId("silence-comment").fill("storm");
  await form.getByTestId("create-silence").click();
  await expect(form.getByRole("alert")).toContainText("only an ADMIN may silence everything");

  await mine.getByTestId("expire-silence").click();
  await expect(page.getByTestId("silences-ended").getByTestId("silence").filter({ hasText: name })).toHaveCount(1);
  await expect(holding.getByTestId("silence").filter({ hasText: name })).toHaveCount(0);

  // From an incident's alert: its repeats are held back, and its timeline says so.
  const other = `CertExpiring${Date.now()}`;
  const alert = { name: other, service: `edge-${Date.now()}`, severity: "warning" };
  const fired = await page.request.post("/api/v1/alerts/webhook", { data: alert });
  const incident = (await fired.json()).incidents[0];
  await open(page, `/incidents/${incident}`);
  await page.getByTestId("silence-like-this").first().click();
  await expect(page.getByTestId("silenced")).toContainText("Silenced for 2 h");
  const repeat = await page.request.post("/api/v1/alerts/webhook", { data: alert });
  expect((await repeat.json()).silenced).toBe(1);
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(
    page.getByTestId("timeline").getByTestId("timeline-entry").filter({ hasText: "held back by silence #" }),
  ).toHaveCount(1);
});

test("a schedule and an escalation policy made on the On call page; the dashboard says who is on call", async ({
  browser,
}) => {
  const page = await session(browser, "bob");
  const name = `primary-${Date.now()}`;
  await open(page, "/oncall");
  const schedule = page.getByTestId("new-schedule");
  await schedule.getByTestId("schedule-name").fill(name);
  await schedule.getByTestId("schedule-people").fill("alice, bob");
  await schedule.getByTestId("create-schedule").click();
  const row = page.getByTestId("schedule").filter({ hasText: name });
  await expect(row).toHaveCount(1);
  await expect(row.getByTestId("on-call-now")).toHaveText(/alice|bob/);

  const policy = page.getByTestId("new-policy");
  await policy.getByTestId("policy-name").fill(`critical-${Date.now()}`);
  await policy.getByTestId("policy-steps").fill(`schedule ${name} 5\nuser nobody-here 10`);
  await policy.getByTestId("create-policy").click();
  await expect(policy.getByRole("alert")).toContainText("step 2: `nobody-here` is not a user");
  await policy.getByTestId("policy-steps").fill(`schedule ${name} 5\nrole CTO 0`);
  await policy.getByTestId("create-policy").click();
  await expect(page.getByTestId("policy").filter({ hasText: `page schedule ${name}, then wait 5 min` })).toHaveCount(1);

  await open(page, "/");
  await expect(page.getByTestId("tile-on-call")).toContainText(name);
});
