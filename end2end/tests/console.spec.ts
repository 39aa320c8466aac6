import { expect, test } from "@playwright/test";

const password = process.env.AWOOOI_DEMO_PASSWORD ?? "";

async function signIn(page, username: string) {
  await page.goto("/");
  // Unauthenticated visitors land on the login page.
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
}

test("sign in, see server info, and watch the live heartbeat", async ({ page }) => {
  await signIn(page, "alice");
  await expect(page.getByTestId("whoami")).toHaveText("alice (DEVOPS)");
  await expect(page.getByTestId("database")).toHaveText("sqlite");
  // Only the hydrated page opens the subscription: the counter must advance.
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.getByTestId("heartbeat-status")).toHaveText("live");
  const count = page.getByTestId("heartbeat-count");
  await expect(count).toHaveText(/^\d+$/);
  const first = Number(await count.textContent());
  await expect
    .poll(async () => Number(await count.textContent()), { timeout: 10_000 })
    .toBeGreaterThan(first);
});

test("a wrong password is refused in place, without a page load", async ({ page }) => {
  await page.goto("/login");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("Username").fill("bob");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("invalid username or password");
  await expect(page).toHaveURL(/\/login$/);
});

test("the main navigation opens a page and sign-out ends the session", async ({ page }) => {
  await signIn(page, "erin");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "FinOps" }).click();
  await expect(page).toHaveURL(/\/finops$/);
  await expect(page.getByRole("heading", { name: "FinOps" })).toBeVisible();
  await expect(page.getByTestId("monthly-waste")).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
});

test("the console fits a phone screen", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await signIn(page, "bob");
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: "test-results/dashboard-phone.png", fullPage: true });
});
