import { readFileSync } from "node:fs";
import { expect, test } from "@playwright/test";
import { open, session } from "./support";

test("an admin sends test notifications, sees a dead letter and re-drives it", async ({ browser }) => {
  const admin = await session(browser, "admin");
  await open(admin, "/settings");
  const channels = admin.getByTestId("channel");
  await expect(channels).toHaveCount(2);
  await expect(channels.filter({ hasText: "capture" })).toContainText("WEBHOOK");
  await expect(channels.filter({ hasText: "capture" })).toContainText("(signed)");
  // The channel's path is part of its credential: never shown.
  await expect(admin.locator("main")).not.toContainText("/nobody");
  await expect(admin.getByTestId("routes")).toContainText("APPROVAL_PENDING");

  // A receiver that answers: delivered, and it got the key the page shows.
  await admin.getByTestId("test-capture").click();
  const delivered = admin.getByTestId("delivery").filter({ hasText: "capture" }).filter({ hasText: "DELIVERED" });
  await expect(async () => {
    await admin.getByTestId("reload").click();
    await expect(delivered.first()).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 15_000 });
  const key = (await delivered.first().locator("td").nth(8).textContent()) ?? "";
  expect(key).toMatch(/^awoooi-\d+-capture$/);
  const received = readFileSync(process.env.AWOOOI_E2E_RECEIVED ?? "", "utf8");
  expect(received).toContain(`"key": "${key}"`);

  // A receiver that is down: dead-lettered after its attempts, then re-driven.
  await expect(admin.getByTestId("no-dead-letters")).toBeVisible();
  await admin.getByTestId("test-unreachable").click();
  const dead = admin.getByTestId("dead-letter").filter({ hasText: "unreachable" });
  await expect(async () => {
    await admin.getByTestId("reload").click();
    await expect(dead.first()).toBeVisible({ timeout: 500 });
  }).toPass({ timeout: 15_000 });
  await expect(dead.first()).toContainText("cannot reach the receiver");
  const id = (await dead.first().locator("td").first().textContent()) ?? "";
  await admin.getByTestId(`redrive-${id}`).click();
  await expect(admin.getByTestId("action-outcome")).toContainText(`delivery ${id} is PENDING again`);
  await admin.screenshot({ path: "test-results/settings.png", fullPage: true });
});

test("settings are for admins", async ({ browser }) => {
  const viewer = await session(browser, "erin");
  await open(viewer, "/settings");
  await expect(viewer.getByTestId("admins-only")).toBeVisible();
  await expect(viewer.getByTestId("channel")).toHaveCount(0);
});
