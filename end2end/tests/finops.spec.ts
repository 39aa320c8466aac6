import { expect, test } from "@playwright/test";
import { open, session } from "./support";

test("the FinOps page shows the seed's panel and scans on demand", async ({ browser }) => {
  const admin = await session(browser, "admin");
  await open(admin, "/finops");
  await expect(admin.getByTestId("monthly-waste")).toHaveText("$523.60");
  await expect(admin.getByTestId("realizable")).toHaveText("$480.00/mo");
  await expect(admin.getByTestId("freed")).toHaveText("$43.60/mo");
  await expect(admin.getByTestId("annual")).toHaveText("$5,760/yr");
  const rows = admin.getByTestId("recommendation");
  for (const [what, saving, risk] of [
    ["Delete orphaned PVC 'data-postgres-backup'", "-$40.00", "LOW"],
    ["Resize node 'worker-large-01'", "-$340.00", "HIGH"],
    ["Delete zombie Pod 'legacy-api-5d7b8'", "-$76.00", "MEDIUM"],
  ]) {
    const row = rows.filter({ hasText: what });
    await expect(row).toContainText(saving);
    await expect(row).toContainText(risk);
  }
  await expect(admin.getByTestId("by-namespace")).toContainText("analytics");
  await admin.getByTestId("scan").click();
  await expect(admin.getByTestId("scan")).toBeEnabled();
  await expect(admin.getByTestId("monthly-waste")).toHaveText("$523.60");
  await admin.screenshot({ path: "test-results/finops.png", fullPage: true });
});

test("a recommendation becomes an approval with its saving, signed from the dashboard's tiles", async ({ browser }) => {
  const admin = await session(browser, "admin");
  await open(admin, "/finops");
  await admin.getByTestId("propose-worker-large-01").click();
  const link = admin.getByTestId("fix-approval");
  await expect(link).toHaveText(/Approval #\d+ PENDING/);
  const href = (await link.getAttribute("href")) ?? "";
  expect(href).toMatch(/^\/approvals\/\d+$/);
  await expect(admin.getByTestId("propose-worker-large-01")).toHaveCount(0);

  // The dashboard: the waste, and the approval with what it waits for.
  await open(admin, "/");
  await expect(admin.getByTestId("tile-waste-amount")).toHaveText("$523.60/mo");
  await expect(admin.getByTestId("tile-waste")).toHaveAttribute("href", "/finops");
  const pending = admin.getByTestId("pending-approval").filter({ hasText: "resize_node worker-large-01" });
  await expect(pending).toContainText("0 of 2 signatures · from ADMIN, DEVOPS, SRE");
  await pending.getByRole("link").click();
  await expect(admin).toHaveURL(new RegExp(`${href}$`));
  await expect(admin.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(admin.getByTestId("saving")).toHaveText("Saves $340.00/mo ($4080.00/yr)");

  // Two people other than the requester sign; it runs.
  for (const signer of ["bob", "alice"]) {
    const page = await session(browser, signer);
    await open(page, href);
    await page.getByTestId("approve").click();
    await expect(page.getByTestId("signatures")).toContainText(`✔ ${signer}`);
  }
  await open(admin, href);
  await expect(admin.getByTestId("approval-card")).toHaveAttribute("data-status", "EXECUTED");
  await open(admin, "/");
  const executed = admin.getByTestId("latest-execution").filter({ hasText: "resize_node worker-large-01" });
  await expect(executed).toContainText("SUCCEEDED");
  await admin.screenshot({ path: "test-results/dashboard.png", fullPage: true });

  // The next scan no longer recommends it.
  await admin.getByTestId("tile-waste").click();
  await expect(admin).toHaveURL(/\/finops$/);
  await expect(admin.locator("body")).toHaveAttribute("data-hydrated", "true");
  await admin.getByTestId("scan").click();
  await expect(admin.getByTestId("monthly-waste")).toHaveText("$183.60");
  await expect(admin.getByTestId("recommendation").filter({ hasText: "worker-large-01" })).toHaveCount(0);
});
