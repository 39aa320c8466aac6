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
