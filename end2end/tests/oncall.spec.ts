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
