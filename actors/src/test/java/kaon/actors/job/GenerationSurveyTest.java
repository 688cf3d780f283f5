package kaon.actors.job;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** How long a survey waits for the members after the first answered. */
class GenerationSurveyTest {

  @Test
  void aSmallJobWaitsFourTimesTheFirstAnswerButNotLessThanItsFloor() {
    // Two ranks: a hung one is given up on quickly (a hang's recovery depends on it).
    assertEquals(Duration.ofMillis(240), GenerationSurvey.patience(Duration.ofMillis(5), 2));
    assertEquals(Duration.ofMillis(400), GenerationSurvey.patience(Duration.ofMillis(100), 2));
  }

  @Test
  void aLargeJobWaitsLongerForItsMembersAnswersSpreadWider() {
    assertEquals(Duration.ofMillis(840), GenerationSurvey.patience(Duration.ofMillis(5), 32));
    assertEquals(Duration.ofMillis(2760), GenerationSurvey.patience(Duration.ofMillis(5), 128));
    assertEquals(Duration.ofMillis(4000), GenerationSurvey.patience(Duration.ofMillis(1000), 128));
  }
}
