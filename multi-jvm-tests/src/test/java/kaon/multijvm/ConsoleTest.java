package kaon.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import kaon.protocol.v1.ClusterServiceClient;
import kaon.protocol.v1.GetJobRequest;
import kaon.protocol.v1.JobPhase;
import kaon.protocol.v1.JobServiceClient;
import kaon.protocol.v1.JobSpecification;
import kaon.protocol.v1.SubmitJobRequest;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The web console in a real browser (Debian's chromium, driven through its chromedriver by
 * Selenium) against a real node training a real job: the console asks for the token and refuses a
 * wrong one, lists the job, shows its loss curve gaining points live and its log, cancels it from the page and
 * shows it cancelled, as the API then says too; the cluster page shows the node's devices and
 * their owner. Screenshots of the job page, running and cancelled, are kept in target/console/.
 */
class ConsoleTest {

  private static final Duration WAIT = Duration.ofMinutes(2);
  private static final Path SHOTS = Path.of("target", "console");

  @Test
  void aUserSignsInWatchesAJobsCurveGrowAndCancelsItFromTheBrowser() throws Exception {
    String token = UUID.randomUUID().toString();
    int port = KaonProcess.freePort();
    int apiPort = KaonProcess.freePort();
    String jobId = "console-" + UUID.randomUUID().toString().substring(0, 8);
    ActorSystem<Void> client = ActorSystem.create(Behaviors.empty(), "test-client",
        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    Files.createDirectories(SHOTS);
    WebDriver browser = null;
    try (KaonProcess node = KaonProcess.start("console-node", KaonProcess.isolated(Map.of("KAON_TOKEN", token)),
        "node", "--devices", "2", "--port", Integer.toString(port), "--api-port", Integer.toString(apiPort))) {
      GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", apiPort, client).withTls(false);
      ClusterServiceClient cluster = ClusterServiceClient.create(settings, client);
      JobServiceClient jobs = JobServiceClient.create(settings, client);
      String bearer = "Bearer " + token;
      KaonProcess.awaitMembersUp(cluster, bearer, 1, WAIT);
      // Long enough to be cancelled while it runs, whatever the machine's speed. The request id
      // makes a retry safe: a first job on a busy machine can take longer than the call's timeout.
      SubmitJobRequest submit = SubmitJobRequest.newBuilder().setRequestId(jobId).setSpec(JobSpecification.newBuilder()
          .setTask("fashion-mnist-mlp").setMinWorkers(2).setMaxWorkers(2).setEpochs(500)).build();
      KaonProcess.awaitAnswer(() -> jobs.submitJob().addHeader("authorization", bearer).invoke(submit), j -> true,
          "submission", WAIT);

      browser = chromium();
      WebDriverWait wait = new WebDriverWait(browser, WAIT);
      browser.get("http://127.0.0.1:" + apiPort + "/");

      // Signing in: a wrong token is refused and said; the right one opens the jobs.
      signIn(wait, "not-the-token");
      WebElement error = wait.until(ExpectedConditions.visibilityOfElementLocated(By.id("login-error")));
      wait.until(d -> error.getText().contains("refused"));
      signIn(wait, token);
      wait.until(ExpectedConditions.elementToBeClickable(By.linkText(jobId))).click();

      // The job page: running, and its loss curve gains points as the job trains.
      wait.until(d -> d.findElement(By.id("job-phase")).getText().equals("RUNNING"));
      int first = awaitPoints(wait, 3);
      int later = awaitPoints(wait, first + 5);
      assertTrue(later > first, "the curve gained points: " + first + " -> " + later);
      // Its log, from the node that ran it: the submission's line at least.
      wait.until(d -> d.findElement(By.id("job-log")).getText().contains("job " + jobId + " submitted"));
      screenshot(browser, "job-running.png");

      // Cancelling takes two clicks; then the page, and the API, say it is cancelled.
      browser.findElement(By.id("cancel")).click();
      wait.until(d -> d.findElement(By.id("cancel")).getText().startsWith("Confirm"));
      browser.findElement(By.id("cancel")).click();
      wait.until(d -> d.findElement(By.id("job-phase")).getText().equals("CANCELLED"));
      screenshot(browser, "job-cancelled.png");
      assertEquals(JobPhase.CANCELLED, jobs.getJob().addHeader("authorization", bearer)
          .invoke(GetJobRequest.newBuilder().setJobId(jobId).build()).toCompletableFuture().get().getPhase());

      // The cluster page: the node's two devices, free again once the job let them go.
      browser.findElement(By.id("nav-cluster")).click();
      wait.until(d -> d.findElements(By.cssSelector("tr[data-owner]")).size() == 2
          && d.findElements(By.cssSelector("tr[data-owner='']")).size() == 2);
      assertTrue(browser.findElement(By.id("view")).getText().contains("127.0.0.1:" + port));
      screenshot(browser, "cluster.png");

      // The jobs page lists it as cancelled.
      browser.findElement(By.id("nav-jobs")).click();
      wait.until(d -> d.findElement(By.cssSelector("tr[data-job='" + jobId + "']")).getText().contains("CANCELLED"));
      jobs.close();
      cluster.close();
      node.stop();
    } finally {
      if (browser != null) {
        browser.quit();
      }
      client.terminate();
    }
  }

  /** Headless chromium from /usr/bin, driven by its own chromedriver: nothing is downloaded. */
  private static WebDriver chromium() {
    File driver = new File("/usr/bin/chromedriver");
    assertTrue(driver.canExecute(), "chromedriver is missing: apt-get install chromium chromium-driver (.ci/run does)");
    ChromeOptions options = new ChromeOptions();
    options.setBinary("/usr/bin/chromium");
    // Tests run as root on CI machines, where chromium's sandbox cannot start.
    options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1400");
    ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(driver).usingAnyFreePort().build();
    return new ChromeDriver(service, options);
  }

  private static void signIn(WebDriverWait wait, String token) {
    WebElement field = wait.until(ExpectedConditions.visibilityOfElementLocated(By.id("token")));
    field.clear();
    field.sendKeys(token);
    wait.until(ExpectedConditions.elementToBeClickable(By.id("login-submit"))).click();
  }

  /** Waits until the loss chart draws at least {@code atLeast} points; returns how many it draws. */
  private static int awaitPoints(WebDriverWait wait, int atLeast) {
    return wait.until(d -> {
      String drawn = d.findElement(By.id("loss-chart")).getAttribute("data-points");
      int points = drawn == null ? 0 : Integer.parseInt(drawn);
      return points >= atLeast ? points : null;
    });
  }

  private static void screenshot(WebDriver browser, String name) throws Exception {
    File shot = ((TakesScreenshot) browser).getScreenshotAs(OutputType.FILE);
    Files.copy(shot.toPath(), SHOTS.resolve(name), StandardCopyOption.REPLACE_EXISTING);
  }
}
