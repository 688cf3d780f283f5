package kaon.runtime.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Repeated measurements of one figure, as benchmarks report them: the median and every run. */
final class Samples {

  private final List<Double> values = new ArrayList<>();

  void add(double value) {
    values.add(value);
  }

  /** The median: this machine is noisy, and one slow run must not move the figure. */
  double median() {
    List<Double> sorted = new ArrayList<>(values);
    sorted.sort(Double::compare);
    int n = sorted.size();
    return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
  }

  /** The smallest: what the machine gives when nothing else gets in the way. */
  double min() {
    return values.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
  }

  /** How many runs were taken. */
  int size() {
    return values.size();
  }

  /** Every run, rounded, in the order taken. */
  @Override
  public String toString() {
    return String.join(", ", values.stream().map(v -> String.format(Locale.ROOT, "%.0f", v)).toList());
  }
}
