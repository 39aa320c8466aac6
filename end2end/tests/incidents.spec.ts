import { expect, test } from "@playwright/test";

const password = process.env.AWOOOI_DEMO_PASSWORD ?? "";

test("a new alert appears live in the incident list and opens pseudonymised", async ({ page }) => {
  await page.goto("/login");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("Username").fill("bob");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Incidents" }).click();
  await expect(page).toHaveURL(/\/incidents$/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const rows = page.getByTestId("incident-row");
  const before = await rows.count();
  // Give the live subscription a moment to be established before the alert arrives.
  await page.waitForTimeout(500);

  // The browser's session cookie authenticates the webhook call too.
  const title = `checkout latency ${Date.now()}`;
  const response = await page.request.post("/api/v1/alerts/webhook", {
    data: {
      name: "HighLatency",
      service: "checkout",
      severity: "critical",
      description: "user 192.168.7.20 saw 4s at /pay, mail ops@example.com",
      annotations: { summary: title },
    },
  });
  expect(response.status()).toBe(202);

  // No reload: the row arrives over the incidentUpdates subscription.
  await expect(rows).toHaveCount(before + 1);
  const row = rows.filter({ hasText: title });
  await expect(row).toContainText("CRITICAL");
  await row.getByRole("link").click();

  await expect(page.getByTestId("incident-title")).toHaveText(title);
  const alert = page.getByTestId("alert");
  await expect(alert).toContainText("HighLatency");
  await expect(alert).toContainText(/user \[IP_\d+\] saw 4s at \/pay, mail \[EMAIL_\d+\]/);
  await expect(page.locator("body")).not.toContainText("192.168.7.20");
  await expect(page.locator("body")).not.toContainText("ops@example.com");
});
