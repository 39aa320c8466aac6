import { readFileSync } from "node:fs";
import { expect, test } from "@playwright/test";
import { open, session } from "./support";

test("a resolved incident shows its timeline and downloads its postmortem", async ({ browser }) => {
  const page = await session(browser, "bob");
  const fingerprint = `pm-${Date.now()}`;
  // A service of its own, so the alert opens an incident of its own.
  const alert = {
    name: "DiskFull",
    service: `volumes-${Date.now()}`,
    severity: "warning",
    fingerprint,
    description: "volume on 10.9.8.7 is full, owner storage@example.com",
  };
  // The session cookie authenticates the webhook calls too.
  const fired = await page.request.post("/api/v1/alerts/webhook", { data: alert });
  expect(fired.status()).toBe(202);
  const incident = (await fired.json()).incidents[0];
  const resolved = await page.request.post("/api/v1/alerts/webhook", {
    data: { ...alert, status: "resolved" },
  });
  expect(resolved.status()).toBe(202);

  await open(page, `/incidents/${incident}`);
  const timeline = page.getByTestId("timeline");
  await expect(timeline).toBeVisible();
  const entries = timeline.getByTestId("timeline-entry");
  await expect(entries.filter({ hasText: "ALERT FIRED" })).toHaveCount(1);
  await expect(entries.filter({ hasText: "RESOLVED" }).first()).toBeVisible();
  await expect(timeline).not.toContainText("10.9.8.7");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    timeline.getByTestId("postmortem-link").click(),
  ]);
  expect(download.suggestedFilename()).toBe(`incident-${incident}-postmortem.md`);
  const markdown = readFileSync(await download.path(), "utf8");
  expect(markdown).toContain(`(incident ${incident})`);
  expect(markdown).toContain("## Timeline");
  expect(markdown).toContain("## Follow-ups");
  expect(markdown).not.toContain("10.9.8.7");
  expect(markdown).not.toContain("storage@example.com");

  // The dashboard shows the key-time medians.
  await open(page, "/");
  await expect(page.getByTestId("tile-key-times")).toContainText("Median time to");
});
